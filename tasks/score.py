"""How useful another label would be, for every pool example: lower = ask first.

Both pools share one scale, so the caller can rank labelled examples (one more
label) against unlabelled ones (a first label) in a single list.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from cleanlab.multiannotator import get_active_learning_scores

from crowdloop.tasks.consensus import break_exact_ties, check_labels, check_pred_probs

# cleanlab warns when no example has two agreeing labels; that is ordinary in
# early rounds and changes nothing about the scores.
_NO_AGREEMENT_WARNING = "Annotators do not agree on any example"


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
        Labelled examples (class indices, NaN = not labelled by that annotator);
        every row needs a label, annotators without labels are ignored.
    pred_probs : ndarray of shape (N, K)
        Out-of-sample predicted probabilities for the labelled examples.
    pred_probs_unlabeled : ndarray of shape (U, K)
        Predicted probabilities for examples nobody labelled yet.
    seed : seeds the 1e-9 jitter that breaks exact ties in ``pred_probs``
        (:func:`crowdloop.tasks.consensus.break_exact_ties`).

    Returns
    -------
    scores_labeled : ndarray of shape (N,)
    scores_unlabeled : ndarray of shape (U,)
        In [0, 1]; lower means another label is more useful.

    Notes
    -----
    With N == 0 cleanlab scores the unlabelled pool from the model alone (no
    temperature scaling, unit weights); ``pred_probs`` must then have 0 rows.
    """
    n_rows = len(labels_multiannotator)
    pred_probs = check_pred_probs(pred_probs, n_rows=n_rows, name="pred_probs")
    n_classes = pred_probs.shape[1]
    unlabeled = np.asarray(pred_probs_unlabeled, dtype=float)
    unlabeled = check_pred_probs(
        unlabeled.reshape(-1, n_classes) if unlabeled.size == 0 else unlabeled,
        n_rows=len(unlabeled), name="pred_probs_unlabeled",
    )
    if unlabeled.shape[1] != n_classes:
        raise ValueError(
            f"pred_probs has {n_classes} columns but pred_probs_unlabeled has "
            f"{unlabeled.shape[1]}; predict both pools with the same model."
        )
    labels = check_labels(labels_multiannotator, n_classes=n_classes)
    if n_rows == 0 and len(unlabeled) == 0:
        return np.zeros(0), np.zeros(0)

    # cleanlab prints notes (classes lost from the consensus, annotators who share
    # no example) and offers no verbose switch here: keep them out of our output.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", message=_NO_AGREEMENT_WARNING, category=UserWarning)
        scores, scores_unlabeled = get_active_learning_scores(
            labels if n_rows else None,
            break_exact_ties(pred_probs, seed=seed) if n_rows else None,
            unlabeled if len(unlabeled) else None,
        )
    return np.asarray(scores, dtype=float), np.asarray(scores_unlabeled, dtype=float)


def random_scores(n_labeled: int, n_unlabeled: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform [0, 1) scores from ``default_rng(seed)``: shapes (n_labeled,), (n_unlabeled,)."""
    if n_labeled < 0 or n_unlabeled < 0:
        raise ValueError(
            f"pool sizes must be >= 0, got {n_labeled} labelled and {n_unlabeled} unlabelled."
        )
    rng = np.random.default_rng(seed)
    return rng.random(n_labeled), rng.random(n_unlabeled)


def _activelab_strategy(labels_multiannotator, pred_probs, pred_probs_unlabeled, *, seed):
    if pred_probs is None or pred_probs_unlabeled is None:
        raise ValueError(
            "the activelab strategy needs pred_probs for both pools; train a model first."
        )
    return activelab(labels_multiannotator, pred_probs, pred_probs_unlabeled, seed=seed)


def _random_strategy(labels_multiannotator, pred_probs, pred_probs_unlabeled, *, seed):
    n_unlabeled = 0 if pred_probs_unlabeled is None else len(pred_probs_unlabeled)
    return random_scores(len(labels_multiannotator), n_unlabeled, seed=seed)


# name -> fn(labels_multiannotator, pred_probs, pred_probs_unlabeled, *, seed)
STRATEGIES: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "activelab": _activelab_strategy,
    "random": _random_strategy,
}


def score(
    strategy: str,
    labels_multiannotator: pd.DataFrame,
    pred_probs: np.ndarray | None,
    pred_probs_unlabeled: np.ndarray | None,
    *,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of shapes (N,), (U,) from the named strategy; lower = label first.

    ``random`` ignores the probabilities (either may be None; None counts as U == 0).
    """
    if strategy not in STRATEGIES:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown score strategy {strategy!r}; known: {known}.")
    return STRATEGIES[strategy](labels_multiannotator, pred_probs, pred_probs_unlabeled, seed=seed)
