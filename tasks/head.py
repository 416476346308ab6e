"""The head backend: a frozen encoder (mean-pooled, L2-normalised embeddings, cached by
text) and a scikit-learn logistic regression whose C is chosen by inner cross-validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.model import check_labels, check_texts, embedding_key, floor_probs, resolve_model_name


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

        check_texts(texts)
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
        y = check_labels(y, n_classes=n_classes, n_rows=len(X))
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
        return floor_probs(probs)

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


def _logistic(C: float):
    from sklearn.linear_model import LogisticRegression

    # lbfgs fits the multinomial (softmax) model for more than two classes.
    return LogisticRegression(C=C, solver="lbfgs", max_iter=2000)


def _median(grid: Sequence[float]) -> float:
    grid = sorted(grid)
    return float(grid[(len(grid) - 1) // 2])
