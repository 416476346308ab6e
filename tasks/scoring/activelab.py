"""ActiveLab scores (cleanlab): how useful another label would be; lower = ask first.

Labeled and unlabeled examples share one scale, so the caller can rank a labeled
example (one more label) against an unlabeled one (a first label) in a single list.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
from cleanlab.multiannotator import get_active_learning_scores, get_active_learning_scores_ensemble

from crowdloop.tasks.consensus.base import (NO_AGREEMENT_WARNING, break_exact_ties, check_label_matrix,
                                            check_pred_probs)


def activelab(
    labels_multiannotator: pd.DataFrame,
    pred_probs: np.ndarray,
    pred_probs_unlabeled: np.ndarray,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ActiveLab scores (cleanlab ``get_active_learning_scores``).

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
    With N == 0 cleanlab scores the unlabeled pool from the model alone (no
    temperature scaling, unit weights); ``pred_probs`` must then have 0 rows.
    """
    labels, pred_probs, unlabeled = _checked(labels_multiannotator, pred_probs, pred_probs_unlabeled)
    n_rows = len(labels)
    if n_rows == 0 and len(unlabeled) == 0:
        return np.zeros(0), np.zeros(0)
    with _quiet_cleanlab():
        scores, scores_unlabeled = get_active_learning_scores(
            labels if n_rows else None,
            break_exact_ties(pred_probs, seed=seed) if n_rows else None,
            unlabeled if len(unlabeled) else None,
        )
    return np.asarray(scores, dtype=float), np.asarray(scores_unlabeled, dtype=float)


def activelab_ensemble(labels_multiannotator: pd.DataFrame, fold_pred_probs: np.ndarray,
                       fold_pred_probs_unlabeled: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ActiveLab over an ensemble (cleanlab ``get_active_learning_scores_ensemble``).

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
        In [0, 1]; lower means another label is more useful.
    """
    fold_l = np.asarray(fold_pred_probs, dtype=float)
    fold_u = np.asarray(fold_pred_probs_unlabeled, dtype=float)
    if fold_l.ndim != 3 or fold_u.ndim != 3 or len(fold_l) != len(fold_u) or len(fold_l) < 2:
        raise ValueError(f"ensemble probabilities have shapes {fold_l.shape} and {fold_u.shape}; "
                         "expected (P, N, K) and (P, U, K) from the same P >= 2 models.")
    checked = [_checked(labels_multiannotator, fold_l[p], fold_u[p]) for p in range(len(fold_l))]
    labels = checked[0][0]
    n_rows, n_unlabeled = fold_l.shape[1], fold_u.shape[1]
    if n_rows == 0 and n_unlabeled == 0:
        return np.zeros(0), np.zeros(0)
    # cleanlab rescales the unlabeled arrays in place: hand it copies.
    tied = np.stack([break_exact_ties(c[1], seed=seed + p) for p, c in enumerate(checked)])
    with _quiet_cleanlab():
        scores, scores_unlabeled = get_active_learning_scores_ensemble(
            labels if n_rows else None,
            tied if n_rows else None,
            np.stack([c[2] for c in checked]) if n_unlabeled else None,
        )
    return np.asarray(scores, dtype=float), np.asarray(scores_unlabeled, dtype=float)


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
