"""k-fold out-of-sample prediction: every labelled example from a model that never saw it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold


@dataclass(frozen=True)
class OutOfSample:
    """pred_probs (N, K); pred_probs_unlabeled (U, K) = mean of fold_pred_probs_unlabeled (k, U, K);
    folds (N,) = the fold whose model predicted each labelled example."""

    pred_probs: np.ndarray
    pred_probs_unlabeled: np.ndarray
    fold_pred_probs_unlabeled: np.ndarray
    folds: np.ndarray


def fold_assignment(labels: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """Fold index (N,) per labelled example: stratified where every class allows it.

    Classes with fewer than ``folds`` members are spread over as many folds as they
    have members (StratifiedKFold only warns then); with fewer examples than
    folds, each example is its own fold.
    """
    n = len(labels)
    if n < 2 or len(np.unique(labels)) < 2:
        raise ValueError(
            f"out-of-sample prediction needs at least 2 labelled examples of 2 classes; got {n} "
            f"example(s) of {len(np.unique(labels))} class(es). Collect more labels first."
        )
    k = min(folds, n)
    counts = np.bincount(labels)
    splitter = (StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
                if counts.max() >= k else KFold(n_splits=k, shuffle=True, random_state=seed))
    assignment = np.empty(n, dtype=int)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        for fold, (_, held) in enumerate(splitter.split(np.zeros(n), labels)):
            assignment[held] = fold
    return assignment


def out_of_sample(backend, X_labeled, labels: np.ndarray, X_unlabeled, *, n_classes: int, folds: int,
                  seed: int, progress: Callable[[str], None] | None = None) -> OutOfSample:
    """Fit one model per fold on the other folds; predict its held-out fold and the pool.

    Parameters
    ----------
    X_labeled : array of shape (N, ...)   backend features of the labelled examples
    labels : ndarray of shape (N,)        class indices (consensus labels)
    X_unlabeled : array of shape (U, ...) features of the unlabelled pool
    """
    labels = np.asarray(labels, dtype=int)
    assignment = fold_assignment(labels, folds=folds, seed=seed)
    k = int(assignment.max()) + 1
    pred_probs = np.zeros((len(labels), n_classes))
    pool = np.zeros((k, len(X_unlabeled), n_classes))
    for fold in range(k):
        held = assignment == fold
        fitted = backend.fit(X_labeled[~held], labels[~held], n_classes=n_classes, seed=seed + 1 + fold)
        pred_probs[held] = backend.predict_proba(fitted, X_labeled[held])
        if len(X_unlabeled):
            pool[fold] = backend.predict_proba(fitted, X_unlabeled)
        if progress:
            progress(f"fold {fold + 1}/{k} done")
    return OutOfSample(pred_probs=pred_probs, pred_probs_unlabeled=pool.mean(axis=0),
                       fold_pred_probs_unlabeled=pool, folds=assignment)
