"""The head backend's classifier: a logistic regression whose C is chosen by inner cross-validation.

Pure functions of arrays: :func:`fit_head` needs no encoder, so a task runner can fit the
fold models in other processes or on other machines (flows/compute.py) with the results
it would get here.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import sparse

from crowdloop.tasks.config import HeadConfig
from crowdloop.tasks.models import lbfgs
from crowdloop.tasks.models.base import check_class_indices, check_weights, floor_probs


@dataclass(frozen=True)
class HeadModel:
    """A fitted logistic head. ``classifier`` is None when training saw a single class.

    ``columns``: the feature columns the classifier reads, those non-zero in some
    training row (None = all). Dropping the others changes nothing (their L2-penalised
    weights would be exactly 0) but keeps the n-gram fits fast.
    """

    classifier: Any  # sklearn LogisticRegression or None
    classes: np.ndarray  # class indices seen in training, the classifier's column order
    C: float
    n_classes: int
    columns: np.ndarray | None = None


def fit_head(X, y: np.ndarray, *, head: HeadConfig, n_classes: int, seed: int,
             sample_weight: np.ndarray | None = None, C: float | None = None) -> HeadModel:
    """Logistic regression on features X (N, ...) and class indices y (N,), C from inner CV.

    ``sample_weight`` (N,): how much each row counts, in the fit and in the C search.
    ``head``: ``model.head`` (C_grid, inner_folds). ``C``: fit with this C, no search (the
    k-fold models take the C of the model on all labeled examples: tasks/predict.py). A function
    of its arguments alone, so a fold model can be fitted in another process or on another
    machine with the same result.
    """
    n_rows = X.shape[0]
    y = check_class_indices(y, n_classes=n_classes, n_rows=n_rows)
    weights = check_weights(sample_weight, n_rows=n_rows)
    seen = np.unique(y)
    if len(seen) == 1:  # nothing to separate: predict the one class seen
        return HeadModel(classifier=None, classes=seen, C=_median(head.C_grid) if C is None else C,
                         n_classes=n_classes)
    with _one_thread():
        # Cut out once: the inner folds then search a few thousand columns, not 2**18 (the same fits).
        X, columns = _used_columns(X)
        if C is None:
            C = choose_C(X, y, grid=head.C_grid, folds=head.inner_folds, seed=seed, sample_weight=weights)
        classifier = lbfgs.fit(lbfgs.Problem(X, y, weights), C)
    return HeadModel(classifier=classifier, classes=seen, C=C, n_classes=n_classes, columns=columns)


def choose_C(X, y: np.ndarray, *, grid: Sequence[float], folds: int, seed: int,
             sample_weight: np.ndarray | None = None) -> float:
    """The C of ``grid`` with the lowest inner cross-validated log-loss.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (N, D)
    y : ndarray of shape (N,)
        Class indices.
    sample_weight : ndarray of shape (N,), optional
        Weights the fits and the held-out log-loss.

    Classes with a single member cannot be both held out and trained on, so they
    sit out the search (not the final fit); folds shrink to the smallest remaining
    class (at least 2). With fewer than two such classes: the grid's median C.
    Ties go to the smaller C (stronger regularisation).
    """
    from sklearn.model_selection import StratifiedKFold

    grid = sorted(grid)
    y = np.asarray(y, dtype=int)
    weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    counts = np.bincount(y)
    usable = np.flatnonzero(counts >= 2)
    if len(grid) == 1 or len(usable) < 2:
        return _median(grid)
    keep = np.flatnonzero(np.isin(y, usable))
    X, y, weights = X[keep], y[keep], weights[keep]
    folds = int(min(folds, counts[usable].min()))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    losses = np.zeros(len(grid))
    for train, held in splitter.split(np.zeros(len(y)), y):
        if weights[held].sum() <= 0:
            continue
        # The fold's columns are found and cut out once, for every C of the grid.
        X_train, columns = _used_columns(X[train])
        X_held = _restrict(X[held], columns)
        problem = lbfgs.Problem(X_train, y[train], weights[train])
        for i, C in enumerate(grid):
            probs = lbfgs.predict_proba(lbfgs.fit(problem, C), X_held)
            losses[i] += log_loss(y[held], probs, classes=usable, weights=weights[held]) * weights[held].sum()
    return float(grid[int(np.argmin(losses))])


def log_loss(y: np.ndarray, probs: np.ndarray, *, classes: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean log-loss of probs (N, K) for y (N,) in ``classes`` (K, sorted): the number
    ``sklearn.metrics.log_loss(y, probs, labels=classes, sample_weight=weights)`` gives, bit for bit
    (the same operations in the same order), without its input checks, which cost a sixth of a fit."""
    from scipy.special import xlogy

    eps = np.finfo(probs.dtype).eps
    onehot = (y[:, None] == classes[None, :]).astype(probs.dtype)
    loss = -np.sum(xlogy(onehot, np.clip(probs, eps, 1 - eps)), axis=1)
    return float(np.sum(np.multiply(loss, weights)) / np.sum(weights))


@contextmanager
def _one_thread():
    """BLAS and OpenMP on one thread, sklearn's parameter checks off (ours are fixed and valid).

    L-BFGS-B's vector operations on ~10^4 coefficients are too small to share: on 2 cores
    BLAS's second thread made a fit 25 times slower when another process was busy, and
    parallel arms or folds are such processes. One thread also keeps the results
    independent of the machine's core count. sklearn (and with it scipy's BLAS) is imported
    first: a thread limit reaches only the libraries already loaded.
    """
    import sklearn

    with _thread_pools().limit(limits=1), sklearn.config_context(skip_parameter_validation=True):
        yield


@functools.lru_cache(maxsize=1)
def _thread_pools():
    """The BLAS and OpenMP libraries this process has loaded once sklearn's logistic regression
    is imported, found once per process: finding them (threadpoolctl scans every loaded library)
    took 2.4 ms for each head fit, about 5 s of CPU in a 10-arm politeness simulation."""
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _used_columns(X):
    """``X`` restricted to the columns some row uses, and those columns (None: a dense X, all).
    Dropping the others changes nothing: their L2-penalised weights would be exactly 0."""
    if not sparse.issparse(X):
        return X, None
    columns = np.flatnonzero(X.getnnz(axis=0))
    return X[:, columns], columns


def _restrict(X, columns: np.ndarray | None):
    return X if columns is None else X[:, columns]


def predict_head(fitted: HeadModel, X) -> np.ndarray:
    """Probabilities of shape (N, n_classes) for features X (N, ...); classes absent from training get ~0."""
    probs = np.zeros((X.shape[0], fitted.n_classes))
    if X.shape[0] == 0:
        return probs
    if fitted.classifier is None:
        probs[:, fitted.classes[0]] = 1.0
    else:
        probs[:, fitted.classes] = _proba(fitted.classifier, fitted.columns, X)
    return floor_probs(probs)


def _proba(classifier, columns: np.ndarray | None, X) -> np.ndarray:
    return lbfgs.predict_proba(classifier, _restrict(X, columns))


def _median(grid: Sequence[float]) -> float:
    grid = sorted(grid)
    return float(grid[(len(grid) - 1) // 2])
