"""The unlabeled pool, predicted chunk by chunk: its features, every fold model, its embeddings.

A pool of a million texts never has all its features in memory (the head's n-gram
matrix alone would be gigabytes): ``predict.chunk_size`` texts at a time are turned into
features, predicted by each fold model (and sampled by MC dropout where asked), and
written into arrays the caller allocates (:func:`in_memory`, or memory-mapped files in
the campaign's cache, :mod:`.prediction_cache`). Every row's numbers are those of a
prediction over the whole pool at once: a model predicts each text on its own, and the
fold mean is taken per row. (The fine-tune backend's MC-dropout masks are drawn per
chunk, so for pools larger than one chunk its samples differ from an unchunked run's.)

A backend whose embeddings are its frozen encoder's (the head: ``frozen_embeddings``)
hands the pool's embeddings as rows of its cache, read only when a strategy uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from crowdloop.tasks import progress as progress_mod

Allocate = Callable[[str, tuple, Any], np.ndarray]


@dataclass(frozen=True)
class PoolPredictions:
    """What the fold models say about the pool.

    Attributes
    ----------
    folds : ndarray of shape (k, U, K)
        Each fold model's probabilities.
    mean : ndarray of shape (U, K)
        Their mean (unfilled when k is 0).
    posterior : ndarray of shape (S, U, K)
        MC-dropout samples of the full model where asked, else ``folds`` itself.
    embeddings : ndarray or embedding_cache.Rows of shape (U, D)
    """

    folds: np.ndarray
    mean: np.ndarray
    posterior: np.ndarray
    embeddings: Any


def in_memory(name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
    """The default :data:`Allocate`: a zeroed array in memory (``name`` is unused)."""
    return np.zeros(shape, dtype=dtype)


def predict_pool(backend, texts: Sequence[str], *, models: Sequence, full_model, n_classes: int, chunk_size: int,
                 mc_passes: int = 0, seed: int = 0, allocate: Allocate | None = None,
                 progress: Callable[[str], None] | None = None) -> PoolPredictions:
    """Predict ``texts`` (U,) with each of ``models`` (the k fold models), ``chunk_size`` texts at a time.

    ``full_model``: the model on all labeled examples, whose embeddings and MC-dropout samples
    (``mc_passes`` >= 2 on a backend with ``mc_dropout_proba``) the strategies read; None when
    nothing is trained (embeddings of the pretrained encoder, no samples). ``allocate(name,
    shape, dtype)`` makes each output array (default :func:`in_memory`).
    """
    allocate = allocate or in_memory
    n, k = len(texts), len(models)
    folds = allocate("fold_pred_probs_unlabeled", (k, n, n_classes), np.float64)
    mean = allocate("pred_probs_unlabeled", (n, n_classes), np.float64)
    sampled = mc_passes >= 2 and full_model is not None and hasattr(backend, "mc_dropout_proba")
    posterior = allocate("posterior_probs_unlabeled", (mc_passes, n, n_classes), np.float64) if sampled else folds
    frozen = hasattr(backend, "frozen_embeddings")
    embeddings = backend.frozen_embeddings(texts) if frozen else None
    with progress_mod.bar(n, "pool predictions", unit="text", say=progress) as bar:
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            x = backend.features(list(texts[rows]))
            for fold, model in enumerate(models):
                folds[fold, rows] = backend.predict_proba(model, x)
            if k:
                mean[rows] = folds[:, rows].mean(axis=0)
            if sampled:
                posterior[:, rows] = backend.mc_dropout_proba(full_model, x, passes=mc_passes, seed=seed)
            if not frozen:
                vectors = backend.embed(full_model, x)
                if embeddings is None:
                    embeddings = allocate("embeddings_unlabeled", (n, vectors.shape[1]), np.float32)
                embeddings[rows] = vectors
            bar.update(rows.stop - rows.start)
    if embeddings is None:  # an empty pool: the backend's own empty embedding
        embeddings = backend.embed(full_model, backend.features([]))
    return PoolPredictions(folds=folds, mean=mean, posterior=posterior, embeddings=embeddings)
