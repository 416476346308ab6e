"""k-fold out-of-sample prediction: every labeled example from a model that never saw it.

The fold models (and, asked for, the model on all labeled examples) are fitted by
:func:`fit_models`: together, where the backend has ``fit_many`` (the fine-tune backend
trains them as one stacked model), else one ``fit`` after another (the head backend). A
backend with ``fold_settings`` fits the model on all labeled examples first and hands the
fold models what it chose (the head: its C, searched once a round instead of once a model).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from crowdloop.tasks.errors import DataError

# map_fits(fit, jobs) -> [fit(**job) for job in jobs], wherever it runs them (flows/compute.py)
MapFits = Callable[[Callable[..., Any], list[dict]], list]


@dataclass(frozen=True)
class OutOfSample:
    """What k-fold prediction returns.

    Attributes
    ----------
    pred_probs : ndarray of shape (N, K)
        Each labeled example, from the fold model that did not see it.
    folds : ndarray of shape (N,)
        Fold index of each labeled example (the fold whose model predicted it).
    fold_pred_probs : ndarray of shape (k, N, K)
        Every labeled example, per fold model: in-sample for the k-1 models
        that trained on it (committee strategies read these).
    full_model : fitted model or None
        With ``fit_full``: the model fitted on every labeled example with ``seed``.
    models : list of k fitted models
        The fold models (model f never saw fold f): the pool is predicted with them chunk by
        chunk (:func:`crowdloop.tasks.pool.predict_pool`).
    """

    pred_probs: np.ndarray
    folds: np.ndarray
    fold_pred_probs: np.ndarray
    full_model: Any = None
    models: list = field(default_factory=list)


def fold_assignment(labels: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """Fold index of shape (N,) per labeled example: stratified where the labels allow it.

    Parameters
    ----------
    labels : ndarray of shape (N,)
        Class indices.

    Classes with fewer than ``folds`` members are spread over as many folds as
    they have members (StratifiedKFold only warns then). If every class is
    smaller than ``folds``, the split is unstratified (KFold); with fewer
    examples than ``folds``, each example is its own fold (leave-one-out).
    """
    from sklearn.model_selection import KFold, StratifiedKFold  # here: a cached round never imports scikit-learn

    labels = np.asarray(labels, dtype=int)
    n, n_labels = len(labels), len(np.unique(labels))
    if not can_fit(labels):  # a DataError: the round's one line, not a traceback (the labels, not the code)
        raise DataError(
            f"out-of-sample prediction needs at least 2 labeled examples of 2 classes; the consensus labels so far "
            f"are {n} example(s) of {n_labels} class(es). Ingest answers that give another class (for any pool "
            "example, not only the batch's) and run the round again."
        )
    if folds < 2:
        raise ValueError(f"predict.folds is {folds}; k-fold prediction needs at least 2 folds.")
    k = min(folds, n)
    stratifiable = np.bincount(labels).max() >= k
    splitter = (StratifiedKFold(n_splits=k, shuffle=True, random_state=seed) if stratifiable
                else KFold(n_splits=k, shuffle=True, random_state=seed))
    assignment = np.empty(n, dtype=int)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        for fold, (_, held) in enumerate(splitter.split(np.zeros(n), labels)):
            assignment[held] = fold
    return assignment


def can_fit(labels) -> bool:
    """Whether a model can be fitted (and k-fold predictions made) on ``labels``: two of them at least,
    of two classes at least. A round whose labels cannot trains no model (train.train_and_predict)."""
    return len(labels) >= 2 and len(np.unique(labels)) >= 2


def fit_models(backend, X, labels: np.ndarray, subsets: Sequence[np.ndarray], *, n_classes: int,
               seeds: Sequence[int], sample_weight: np.ndarray | None = None,
               map_fits: MapFits | None = None, settings: dict | None = None) -> list:
    """One fitted model per row subset: model m on rows ``subsets[m]`` of (X, labels) with ``seeds[m]``.

    Parameters
    ----------
    X : backend features of shape (N, ...)
    labels : ndarray of shape (N,)
        Class indices.
    subsets : M index arrays into 0..N-1
    sample_weight : ndarray of shape (N,), optional
    map_fits : callable, optional
        ``map_fits(fit, jobs)`` -> ``[fit(**job) for job in jobs]``, run where it likes (the
        flows' task runners: threads, a cluster); used with a backend's ``fitter``.
    settings : dict, optional
        More keywords for every ``fit`` (a backend's ``fold_settings``).

    Through ``backend.fit_many`` where the backend has it (all M trained together), else
    ``backend.fitter`` on each subset through ``map_fits``, else ``backend.fit`` on each subset
    in turn; either way model m sees only its rows, and gets the same result.
    """
    if hasattr(backend, "fit_many"):
        return backend.fit_many(X, labels, subsets, n_classes=n_classes, seeds=seeds, sample_weight=sample_weight)
    weights = None if sample_weight is None else np.asarray(sample_weight)
    jobs = [{"X": X[rows], "y": labels[rows], "n_classes": n_classes, "seed": seed,
             "sample_weight": None if weights is None else weights[rows], **(settings or {})}
            for rows, seed in zip(subsets, seeds)]
    if map_fits is not None and hasattr(backend, "fitter"):
        return map_fits(backend.fitter, jobs)
    return [backend.fit(**job) for job in jobs]


def out_of_sample(backend, X_labeled, labels: np.ndarray, *,
                  n_classes: int, folds: int, seed: int, sample_weight: np.ndarray | None = None,
                  progress: Callable[[str], None] | None = None, fit_full: bool = False,
                  map_fits: MapFits | None = None) -> OutOfSample:
    """Fit one model per fold on the other folds; predict its held-out fold.

    Parameters
    ----------
    backend : model.Backend
        Anything with ``fit(X, y, *, n_classes, seed)`` and ``predict_proba(fitted, X)``.
    X_labeled : ndarray or sparse matrix of shape (N, ...)
        Backend features of the labeled examples.
    labels : ndarray of shape (N,)
        Their class indices (consensus labels), in 0..n_classes-1.
    sample_weight : ndarray of shape (N,), optional
        Each labeled example's weight in the fits that train on it.

    Fold model ``f`` is fitted with seed ``seed + 1 + f``, so the model fitted on
    all labeled data with ``seed`` is never a copy of a fold model. ``fit_full``: fit
    that model too, beside the fold models (``full_model``). ``map_fits``: see :func:`fit_models`.
    """
    labels = np.asarray(labels, dtype=int)
    if X_labeled.shape[0] != len(labels):
        raise ValueError(f"got {X_labeled.shape[0]} labeled feature rows but {len(labels)} labels; "
                         "pass one label per row.")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be class indices in 0..{n_classes - 1}; "
                         f"got values from {labels.min()} to {labels.max()}.")
    assignment = fold_assignment(labels, folds=folds, seed=seed)
    k = int(assignment.max()) + 1
    subsets = [np.flatnonzero(assignment != fold) for fold in range(k)]
    seeds = [seed + 1 + fold for fold in range(k)]
    fit = functools.partial(fit_models, backend, X_labeled, labels, n_classes=n_classes,
                            sample_weight=sample_weight, map_fits=map_fits)
    if progress:
        progress(f"fitting {k + fit_full} models: {k} folds{' and the full model' if fit_full else ''}")
    if fit_full and hasattr(backend, "fold_settings"):
        # the full model first: the fold models take its settings (the head's C) rather than search their own
        full = fit([np.arange(len(labels))], seeds=[seed])
        fitted_models = [*fit(subsets, seeds=seeds, settings=backend.fold_settings(full[0])), *full]
    elif fit_full:
        fitted_models = fit([*subsets, np.arange(len(labels))], seeds=[*seeds, seed])
    else:
        fitted_models = fit(subsets, seeds=seeds)
    every = np.zeros((k, len(labels), n_classes))
    for fold, fitted in enumerate(fitted_models[:k]):
        held = assignment == fold
        every[fold] = backend.predict_proba(fitted, X_labeled)
        if progress:
            progress(f"fold {fold + 1}/{k}: trained on {int((~held).sum())}, predicted {int(held.sum())} held-out "
                     "examples")
    pred_probs = every[assignment, np.arange(len(labels))]
    return OutOfSample(pred_probs=pred_probs, folds=assignment, fold_pred_probs=every,
                       full_model=fitted_models[k] if fit_full else None, models=list(fitted_models[:k]))
