"""ActiveLab scores: how useful another label would be; lower = ask first.

Labeled and unlabeled examples share one scale, so the caller can rank a labeled
example (one more label) against an unlabeled one (a first label) in a single list.

This is cleanlab 2.9.0's ``get_active_learning_scores`` (and its ``_ensemble``) step for
step, with one change: the temperature that rescales the model's probabilities before
they are weighed against the annotators. cleanlab fits it with ``find_best_temp_scaler``,
which counts each example's votes from class 0 up instead of at the classes voted (the
miscount :mod:`crowdloop.tasks.consensus.calibration` describes): on two classes every
example whose only label is class 1 counts as a vote for class 0, so the temperature was
fitted to votes nobody gave. That temperature decides how sure the model looks on the
unlabeled pool, so it tilts every batch between first labels and re-labels. Here the
temperature comes from :func:`calibration.best_temperature` (cleanlab's own search, on the
right counts); everything else (CROWDLAB's weights and consensus quality, the scores'
formula) is cleanlab's.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdloop.tasks.consensus import fast_agreement
from crowdloop.tasks.consensus.base import (NO_AGREEMENT_WARNING, break_exact_ties, check_label_matrix,
                                            check_pred_probs, only_single_labels)
from crowdloop.tasks.consensus.calibration import best_temperature


def activelab(
    labels_multiannotator: pd.DataFrame,
    pred_probs: np.ndarray,
    pred_probs_unlabeled: np.ndarray,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ActiveLab scores (cleanlab's ``get_active_learning_scores``, with the temperature fitted
    to the votes given: see the module's docstring).

    Parameters
    ----------
    labels_multiannotator : DataFrame of shape (N, M)
        Labeled examples (class indices, NaN = not labeled by that annotator);
        every row needs a label, annotators without labels are ignored.
    pred_probs : ndarray of shape (N, K)
        Out-of-sample predicted probabilities for the labeled examples.
    pred_probs_unlabeled : ndarray of shape (U, K)
        Predicted probabilities for examples nobody labeled yet.
    seed : seeds the 1e-9 jitter that breaks exact ties in ``pred_probs``
        (:func:`crowdloop.tasks.consensus.base.break_exact_ties`).

    Returns
    -------
    scores_labeled : ndarray of shape (N,)
    scores_unlabeled : ndarray of shape (U,)
        In [0, 1]; lower means another label is more useful.

    Notes
    -----
    A labeled example scores its CROWDLAB consensus quality averaged with chance (1/K),
    weighted by the annotators who labeled it (+ the model) against the mean annotator;
    an unlabeled one the model's top probability averaged with chance, weighted by the
    model against the mean annotator. When every example has a single label, cleanlab
    neither scales nor weighs (majority vote, unit weights). With N == 0 the unlabeled
    pool is scored from the model alone; ``pred_probs`` must then have 0 rows.
    """
    from cleanlab.internal.multiannotator_utils import temp_scale_pred_probs  # cleanlab imports scikit-learn: 1-2 s

    labels, pred_probs, unlabeled = _checked(labels_multiannotator, pred_probs, pred_probs_unlabeled)
    values, n_classes = labels.to_numpy(dtype=float), pred_probs.shape[1]
    with _quiet_cleanlab():
        fit = _fit_labeled(values, break_exact_ties(pred_probs, seed=seed)[None] if len(values) else None)
    confidence = temp_scale_pred_probs(unlabeled, fit.temperatures[0]).max(axis=1) if len(unlabeled) else np.zeros(0)
    return _scores_labeled(values, fit, n_classes), _with_chance(confidence, fit.model_weight[0], fit.mean_weight,
                                                                  n_classes)


def activelab_ensemble(labels_multiannotator: pd.DataFrame, fold_pred_probs: np.ndarray,
                       fold_pred_probs_unlabeled: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ActiveLab over an ensemble (cleanlab's ``get_active_learning_scores_ensemble``, with each
    model's temperature fitted to the votes given).

    Parameters
    ----------
    labels_multiannotator : DataFrame of shape (N, M)
    fold_pred_probs : ndarray of shape (P, N, K)
        Each of P models' probabilities for the labeled examples (cleanlab
        weighs each model by how well it agrees with the consensus).
    fold_pred_probs_unlabeled : ndarray of shape (P, U, K)
    seed : seeds the tie-breaking jitter, as in :func:`activelab`.

    Returns
    -------
    scores_labeled : ndarray of shape (N,)
    scores_unlabeled : ndarray of shape (U,)
        In [0, 1]; lower means another label is more useful. An unlabeled example scores the
        label quality of the models' majority class under their weighted mean with chance.
    """
    from cleanlab.internal.multiannotator_utils import temp_scale_pred_probs
    from cleanlab.multiannotator import get_majority_vote_label
    from cleanlab.rank import get_label_quality_scores

    fold_l = np.asarray(fold_pred_probs, dtype=float)
    fold_u = np.asarray(fold_pred_probs_unlabeled, dtype=float)
    if fold_l.ndim != 3 or fold_u.ndim != 3 or len(fold_l) != len(fold_u) or len(fold_l) < 2:
        raise ValueError(f"ensemble probabilities have shapes {fold_l.shape} and {fold_u.shape}; "
                         "expected (P, N, K) and (P, U, K) from the same P >= 2 models.")
    checked = [_checked(labels_multiannotator, fold_l[p], fold_u[p]) for p in range(len(fold_l))]
    values, n_classes, n_unlabeled = checked[0][0].to_numpy(dtype=float), fold_l.shape[2], fold_u.shape[1]
    scores_unlabeled = np.zeros(0)
    with _quiet_cleanlab():
        fit = _fit_labeled(values, np.stack([break_exact_ties(c[1], seed=seed + p) for p, c in enumerate(checked)])
                           if len(values) else None, models=len(fold_l))
        if n_unlabeled:
            scaled = np.stack([temp_scale_pred_probs(c[2], t) for c, t in zip(checked, fit.temperatures)])
            majority = get_majority_vote_label(np.argmax(scaled, axis=2).T, scaled.mean(axis=0), verbose=False)
            mixed = np.average(np.concatenate([scaled, np.full((1, n_unlabeled, n_classes), 1 / n_classes)]),
                               weights=np.append(fit.model_weight, fit.mean_weight), axis=0)
            scores_unlabeled = get_label_quality_scores(majority, mixed)
    return _scores_labeled(values, fit, n_classes), np.asarray(scores_unlabeled, dtype=float)


@dataclass(frozen=True)
class _Fit:
    """What the labeled examples tell ActiveLab: their consensus quality (N,), each model's temperature
    and weight (P,), the annotators' weights (M,) and their mean."""

    quality: np.ndarray
    temperatures: np.ndarray
    model_weight: np.ndarray
    annotator_weight: np.ndarray
    mean_weight: float


def _fit_labeled(values: np.ndarray, probs: np.ndarray | None, *, models: int = 1) -> _Fit:
    """cleanlab's labeled half of ActiveLab for ``probs`` (P, N, K) of P models (P == 1: one model),
    with each temperature fitted to the votes given. When every example has a single label cleanlab
    neither scales nor weighs (majority vote, unit weights); with no labeled example (``probs`` None)
    there is nothing to fit: unit temperatures and weights for ``models`` models."""
    from cleanlab.internal.multiannotator_utils import temp_scale_pred_probs
    from cleanlab.multiannotator import (get_label_quality_multiannotator, get_label_quality_multiannotator_ensemble,
                                         get_majority_vote_label)
    from cleanlab.rank import get_label_quality_scores

    if probs is None:
        ones = np.ones(models)
        return _Fit(np.zeros(0), ones, ones, np.ones(values.shape[1]), 1.0)
    ones = np.ones(len(probs))
    if only_single_labels(values):
        mean_probs = probs.mean(axis=0)
        quality = get_label_quality_scores(get_majority_vote_label(values, mean_probs, verbose=False), mean_probs)
        return _Fit(quality, ones, ones, np.ones(values.shape[1]), 1.0)
    temperatures = np.array([best_temperature(values, model_probs) for model_probs in probs])
    scaled = np.stack([temp_scale_pred_probs(m, t) for m, t in zip(probs, temperatures)])
    options = {"return_annotator_stats": False, "return_detailed_quality": False, "return_weights": True}
    with fast_agreement.swapped_in():
        info = (get_label_quality_multiannotator(values, scaled[0], **options) if len(probs) == 1
                else get_label_quality_multiannotator_ensemble(values, scaled, **options))
    annotator_weight = np.asarray(info["annotator_weight"], dtype=float)
    return _Fit(info["label_quality"]["consensus_quality_score"].to_numpy(), temperatures,
                np.atleast_1d(np.asarray(info["model_weight"], dtype=float)), annotator_weight,
                float(np.mean(annotator_weight)))


def _scores_labeled(values: np.ndarray, fit: _Fit, n_classes: int) -> np.ndarray:
    """Each labeled example's consensus quality averaged with chance, weighted by its annotators and
    the models against the mean annotator."""
    if not len(values):
        return np.zeros(0)
    weight = _label_weight(values, fit.annotator_weight) + np.sum(fit.model_weight)
    return _with_chance(fit.quality, weight, fit.mean_weight, n_classes)


def _label_weight(values: np.ndarray, annotator_weight: np.ndarray) -> np.ndarray:
    """Per labeled example (N,), the summed weight of the annotators who labeled it."""
    return np.where(np.isnan(values), 0.0, np.asarray(annotator_weight, dtype=float)[None, :]).sum(axis=1)


def _with_chance(quality: np.ndarray, weight, chance_weight: float, n_classes: int) -> np.ndarray:
    """``quality`` averaged with chance (1/K), weighted ``weight`` against ``chance_weight``."""
    return (np.asarray(quality, dtype=float) * weight + chance_weight / n_classes) / (weight + chance_weight)


def _checked(labels_multiannotator, pred_probs, pred_probs_unlabeled):
    """(labels, pred_probs, pred_probs_unlabeled) validated, as float arrays of K columns each."""
    n_rows = len(labels_multiannotator)
    pred_probs = check_pred_probs(pred_probs, n_rows=n_rows, name="pred_probs")
    n_classes = pred_probs.shape[1]
    unlabeled = np.array(pred_probs_unlabeled, dtype=float)
    unlabeled = check_pred_probs(
        unlabeled.reshape(-1, n_classes) if unlabeled.size == 0 else unlabeled,
        n_rows=len(unlabeled), name="pred_probs_unlabeled",
    )
    if unlabeled.shape[1] != n_classes:
        raise ValueError(
            f"pred_probs has {n_classes} columns but pred_probs_unlabeled has "
            f"{unlabeled.shape[1]}; predict both pools with the same model."
        )
    return check_label_matrix(labels_multiannotator, n_classes=n_classes), pred_probs, unlabeled


@contextlib.contextmanager
def _quiet_cleanlab():
    # cleanlab prints notes (classes lost from the consensus, annotators who share
    # no example) and offers no verbose switch here: keep them out of our output.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", message=NO_AGREEMENT_WARNING, category=UserWarning)
        yield
