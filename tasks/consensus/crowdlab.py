"""CROWDLAB (cleanlab): the annotators' labels mixed with the model's out-of-sample probabilities."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks.consensus import calibration, fast_agreement
from crowdloop.tasks.consensus.base import (NO_AGREEMENT_WARNING, Consensus, agreement_rates, annotators_frame,
                                            break_exact_ties, check_label_matrix, check_pred_probs, examples_frame,
                                            given_label_quality, only_single_labels)


def crowdlab(
    labels_multiannotator: pd.DataFrame,
    pred_probs: np.ndarray,
    *,
    classes: Sequence[str],
    calibrate_probs: bool,
    label: str,
    seed: int,
) -> Consensus:
    """CROWDLAB consensus via cleanlab's ``get_label_quality_multiannotator``.

    Parameters
    ----------
    labels_multiannotator : DataFrame of shape (N, M), class indices (see ``to_wide``)
        Every row needs at least one label; annotators without labels are dropped.
    pred_probs : ndarray of shape (N, K)
        Out-of-sample predicted probabilities, one column per class (classes
        nobody chose yet included), columns in the order of ``classes``.
    classes : the K class names; exact ties in ``pred_probs`` are broken by name.
    calibrate_probs : temperature-scale ``pred_probs`` to the annotators first
        (:mod:`.calibration`: cleanlab's search, on the right vote counts).
    label : cleanlab's ``consensus_method``: ``best_quality`` takes the class CROWDLAB
        finds most likely, so a confident model can overrule the annotators;
        ``majority_vote`` keeps the annotators' majority and lets the model break ties.
        Quality scores and annotator quality are CROWDLAB's either way.
    seed : seeds the 1e-9 jitter that breaks exact ties in ``pred_probs`` rows
        (see :func:`~crowdloop.tasks.consensus.base.break_exact_ties`); rows without
        ties are used unchanged.

    Notes
    -----
    ``consensus_quality`` is CROWDLAB's estimated probability that the consensus label
    is correct: the consensus class's entry in the posterior that mixes the (optionally
    calibrated) model with each annotator, weighted by their estimated accuracy.

    cleanlab refuses data where no example has two labels; then the consensus is
    the single label, its quality the model's probability for it (cleanlab's
    ``self_confidence``, uncalibrated as in ActiveLab's single-label case) and
    annotator quality the mean of that over the annotator's labels. An annotator
    who shares no example with others gets cleanlab's NaN quality replaced by the
    mean CROWDLAB quality of their own labels. ``label_quality`` is cleanlab's
    ``detailed_label_quality``: each given label's quality under the same posterior.
    """
    from cleanlab.multiannotator import get_label_quality_multiannotator  # cleanlab imports scikit-learn: 1-2 s

    n_rows = len(labels_multiannotator)
    pred_probs = check_pred_probs(pred_probs, n_rows=n_rows, name="pred_probs")
    labels = check_label_matrix(labels_multiannotator, n_classes=pred_probs.shape[1])
    values = labels.to_numpy()
    if only_single_labels(values):
        return _single_labels(labels, pred_probs)

    probs = break_exact_ties(pred_probs, seed=seed, classes=classes)
    if calibrate_probs:  # ours, not cleanlab's: see calibration.py for why
        probs = break_exact_ties(calibration.calibrate(values, probs), seed=seed, classes=classes)
    with warnings.catch_warnings(), fast_agreement.swapped_in():
        warnings.filterwarnings("ignore", message=NO_AGREEMENT_WARNING, category=UserWarning)
        info = get_label_quality_multiannotator(
            labels, probs, consensus_method=label, calibrate_probs=False, verbose=False,
            return_annotator_stats=False, return_weights=True,
        )
    per_example = info["label_quality"]
    examples = examples_frame(
        labels.index,
        per_example["consensus_label"],
        per_example["consensus_quality_score"],
        per_example["annotator_agreement"],
        per_example["num_annotations"],
    )
    detailed = info["detailed_label_quality"].to_numpy(dtype=float)  # (N, M), the columns of ``labels``
    stats = annotator_stats(values, per_example, detailed, model_weight=info["model_weight"],
                            annotator_weight=info["annotator_weight"])
    # cleanlab gives NaN quality to an annotator who shares no example with
    # others; judge them by the mean CROWDLAB quality of their own labels.
    own = np.nanmean(detailed, axis=0)
    quality, agreement = stats["annotator_quality"], stats["agreement_with_consensus"]
    annotators = annotators_frame(
        labels.columns,
        quality=np.where(np.isnan(quality), own, quality),
        agreement=agreement,
        num=stats["num_examples_labeled"],
        worst=np.where(agreement == 1, -1, stats["worst_class"]),
    )
    return Consensus(examples, annotators, "crowdlab",
                     pd.DataFrame(detailed, index=labels.index, columns=labels.columns))


def annotator_stats(values: np.ndarray, per_example: pd.DataFrame, detailed: np.ndarray, *, model_weight: float,
                    annotator_weight: np.ndarray) -> dict[str, np.ndarray]:
    """cleanlab's ``annotator_stats`` (quality, agreement with the consensus, labels given, worst class),
    one array (M,) each in the order of the columns of ``values`` (N, M), from what
    ``get_label_quality_multiannotator`` returns with ``return_weights`` (``per_example`` is its
    ``label_quality``, ``detailed`` its ``detailed_label_quality``) and its own quality function.

    cleanlab 2.9.0 finds each annotator's worst class with a pandas group-by per annotator, three
    quarters of the time of a CROWDLAB consensus on the politeness replay; :func:`_worst_class` gives its answer
    with numpy and hands the rare three-way tie to cleanlab. tests/unit/test_consensus.py checks
    all four against cleanlab's own ``annotator_stats``.
    """
    # cleanlab's own annotator quality (private; cleanlab is pinned, and tests/unit/test_consensus.py
    # compares annotator_stats with its public output)
    from cleanlab.multiannotator import _get_annotator_quality

    label = per_example["consensus_label"].to_numpy()
    quality_score = per_example["consensus_quality_score"].to_numpy()
    num = per_example["num_annotations"].to_numpy()
    quality = _get_annotator_quality(values, None, label, num, per_example["annotator_agreement"].to_numpy(),
                                     model_weight, annotator_weight, detailed_label_quality=detailed,
                                     quality_method="crowdlab")
    given = ~np.isnan(values)
    worst = np.array([_worst_class(column, mine, label, quality_score) for column, mine in zip(values.T, given.T)])
    return {"annotator_quality": quality, "agreement_with_consensus": agreement_rates(values, label),
            "num_examples_labeled": given.sum(axis=0), "worst_class": worst.astype(int)}


def _worst_class(column: np.ndarray, mine: np.ndarray, label: np.ndarray, quality_score: np.ndarray) -> int:
    """cleanlab's ``_get_single_annotator_worst_class`` for one annotator's labels ``column`` (N,), given
    where ``mine``: the class whose labels agree least with the consensus ``label``, ties to the class
    they labeled most, then (cleanlab itself) to the highest mean consensus quality."""
    given = column[mine]
    classes, which, count = np.unique(given, return_inverse=True, return_counts=True)
    accuracy = np.bincount(which, weights=given == label[mine]) / count  # exact: sums of 0s and 1s
    lowest = np.flatnonzero(accuracy == accuracy.min())
    most = lowest[count[lowest] == count[lowest].max()]
    if len(most) == 1:
        return int(classes[most[0]])
    from cleanlab.multiannotator import _get_single_annotator_worst_class  # private, as _get_annotator_quality

    return int(_get_single_annotator_worst_class(column, label, quality_score))


def _single_labels(labels: pd.DataFrame, pred_probs: np.ndarray) -> Consensus:
    values = labels.to_numpy()
    has = ~np.isnan(values)
    # Each row holds exactly one label (or there are no rows).
    label = np.nanmax(values, axis=1).astype(int) if len(values) else np.zeros(0, dtype=int)
    label_quality = pred_probs[np.arange(len(label)), label]
    ones = np.ones(len(label))
    examples = examples_frame(labels.index, label, label_quality, ones, has.sum(axis=1))
    annotators = annotators_frame(
        labels.columns,
        quality=[label_quality[mine].mean() for mine in has.T],
        agreement=np.ones(has.shape[1]),
        num=has.sum(axis=0),
        worst=np.full(has.shape[1], -1),
    )
    return Consensus(examples, annotators, "crowdlab", given_label_quality(labels, pred_probs))
