"""Consensus labels, their quality and annotator quality: majority vote or CROWDLAB.

Labels here are class indices ``0..K-1``; the caller maps class names.

What ``consensus_quality`` means (the number tracked round to round):

* ``crowdlab``: CROWDLAB's estimated probability that the consensus label is
  correct, i.e. the consensus class's entry in the posterior that mixes the
  (optionally calibrated) model with each annotator, weighted by their
  estimated accuracy. It is an absolute probability in [0, 1], so its mean is
  comparable across rounds that use ``crowdlab``.
* ``majority`` (always used in round 0): the share of the example's annotators
  who chose the consensus label. A single label counts as 1.0, so it is an
  optimistic, model-free proxy; ``Consensus.method`` says which one a round used.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from cleanlab.multiannotator import get_label_quality_multiannotator

from crowdloop.tasks.config import CONSENSUS_METHODS

log = logging.getLogger("crowdloop")

EXAMPLE_STATS = ("consensus_label", "consensus_quality", "annotator_agreement", "num_annotations")
ANNOTATOR_STATS = (
    "annotator_id", "annotator_quality", "agreement_with_consensus", "num_examples_labeled",
    "worst_class",
)
# cleanlab warns when no example has two agreeing labels; early rounds often
# look like that, and the low ``annotator_agreement`` already shows it.
_NO_AGREEMENT_WARNING = "Annotators do not agree on any example"


@dataclass(frozen=True)
class Consensus:
    """Per-example consensus and per-annotator statistics of one round.

    ``examples``: index ``example_id``, columns :data:`EXAMPLE_STATS`.
    ``annotators``: one row per annotator with at least one label, sorted by
    ``annotator_id``, columns :data:`ANNOTATOR_STATS`; ``worst_class`` is the
    class the annotator most often gets wrong, or -1 when they never disagree
    with the consensus. ``method``: ``'majority'`` or ``'crowdlab'``.
    """

    examples: pd.DataFrame
    annotators: pd.DataFrame
    method: str


def to_wide(annotations: pd.DataFrame, *, example_ids: Sequence[str]) -> pd.DataFrame:
    """Long annotations to cleanlab's wide ``labels_multiannotator``.

    Parameters
    ----------
    annotations : DataFrame with columns example_id, annotator_id, label (int)
    example_ids : the rows wanted, in order; examples nobody labelled are all-NaN rows.

    Returns
    -------
    labels_multiannotator : DataFrame of shape (N, M)
        Index ``example_ids``, columns the annotator ids (sorted), float with NaN
        where an annotator did not label an example.
    """
    index = pd.Index(list(example_ids), name="example_id")
    if index.has_duplicates:
        first = index[index.duplicated()][0]
        raise ValueError(f"example_ids repeats {first!r}; pass each example once.")
    missing = {"example_id", "annotator_id", "label"} - set(annotations.columns)
    if missing:
        raise ValueError(
            f"annotations lack column(s) {sorted(missing)}; "
            "expected example_id, annotator_id, label."
        )
    unknown = ~annotations["example_id"].isin(index)
    if unknown.any():
        raise ValueError(
            f"annotation for example {annotations['example_id'][unknown].iloc[0]!r} is not among "
            f"example_ids ({int(unknown.sum())} such rows); drop them or add the example."
        )
    twice = annotations.duplicated(["example_id", "annotator_id"])
    if twice.any():
        row = annotations[twice].iloc[0]
        raise ValueError(
            f"annotator {row['annotator_id']!r} labelled example {row['example_id']!r} more than "
            "once; keep one label per (example, annotator) before building the matrix."
        )
    labels = pd.to_numeric(annotations["label"], errors="coerce").astype(float)
    bad = labels.isna() | (labels < 0) | (labels % 1 != 0)
    if bad.any():
        raise ValueError(
            f"label {annotations['label'][bad].iloc[0]!r} is not a class index (integer >= 0); "
            "map class names to indices first."
        )
    long = annotations.assign(label=labels)
    wide = long.pivot(index="example_id", columns="annotator_id", values="label")
    columns = pd.Index(sorted(long["annotator_id"].unique()), name="annotator_id")
    return wide.reindex(index=index, columns=columns).astype(float)


def majority(labels_multiannotator: pd.DataFrame, *, n_classes: int, seed: int) -> Consensus:
    """Plain majority vote; ties go to a class drawn with ``default_rng(seed)``.

    Parameters
    ----------
    labels_multiannotator : DataFrame of shape (N, M), from :func:`to_wide`
    n_classes : K, the number of classes.
    seed : seeds the tie-break.
    """
    labels = check_labels(labels_multiannotator, n_classes=n_classes)
    values = labels.to_numpy()
    counts = np.stack([(values == k).sum(axis=1) for k in range(n_classes)], axis=1).astype(float)
    # A draw in [0, 0.5) reorders only classes with equal counts: a seeded,
    # unbiased tie-break (not always the lowest class index).
    noise = 0.5 * np.random.default_rng(seed).random(counts.shape)
    label = np.argmax(counts + noise, axis=1)
    num = counts.sum(axis=1)
    agreement = counts[np.arange(len(label)), label] / np.maximum(num, 1)
    examples = _examples_frame(labels.index, label, agreement, agreement, num)

    quality, agreement_rate, worst = [], [], []
    for column in values.T:
        mine = ~np.isnan(column)
        agrees = column == label
        # Agreement on shared examples is what tells annotators apart; someone
        # who only labelled single-label examples trivially agrees on those.
        shared = mine & (num >= 2)
        quality.append(agrees[shared].mean() if shared.any() else agrees[mine].mean())
        agreement_rate.append(agrees[mine].mean())
        worst.append(_worst_class(column[mine].astype(int), label[mine]))
    annotators = _annotators_frame(
        labels.columns, quality=quality, agreement=agreement_rate,
        num=(~np.isnan(values)).sum(axis=0), worst=worst,
    )
    return Consensus(examples, annotators, "majority")


def crowdlab(
    labels_multiannotator: pd.DataFrame,
    pred_probs: np.ndarray,
    *,
    calibrate_probs: bool = True,
    label: str = "best_quality",
    seed: int = 0,
) -> Consensus:
    """CROWDLAB consensus via cleanlab's ``get_label_quality_multiannotator``.

    Parameters
    ----------
    labels_multiannotator : DataFrame of shape (N, M), from :func:`to_wide`
        Every row needs at least one label; annotators without labels are dropped.
    pred_probs : ndarray of shape (N, K)
        Out-of-sample predicted probabilities, one column per class (classes
        nobody chose yet included).
    calibrate_probs : temperature-scale ``pred_probs`` to the annotators first.
    label : cleanlab's ``consensus_method``: ``best_quality`` takes the class CROWDLAB
        finds most likely, so a confident model can overrule the annotators;
        ``majority_vote`` keeps the annotators' majority and lets the model break ties.
        Quality scores and annotator quality are CROWDLAB's either way.
    seed : seeds the 1e-9 jitter that breaks exact ties in ``pred_probs`` rows
        (see :func:`break_exact_ties`); rows without ties are used unchanged.

    Notes
    -----
    cleanlab refuses data where no example has two labels; then the consensus is
    the single label, its quality the model's probability for it (cleanlab's
    ``self_confidence``, uncalibrated as in ActiveLab's single-label case) and
    annotator quality the mean of that over the annotator's labels. An annotator
    who shares no example with others gets cleanlab's NaN quality replaced by the
    mean CROWDLAB quality of their own labels.
    """
    n_rows = len(labels_multiannotator)
    pred_probs = check_pred_probs(pred_probs, n_rows=n_rows, name="pred_probs")
    labels = check_labels(labels_multiannotator, n_classes=pred_probs.shape[1])
    values = labels.to_numpy()
    num = (~np.isnan(values)).sum(axis=1)
    if len(values) == 0 or (num == 1).all():
        return _crowdlab_single_labels(labels, pred_probs)

    probs = break_exact_ties(pred_probs, seed=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NO_AGREEMENT_WARNING, category=UserWarning)
        info = get_label_quality_multiannotator(
            labels, probs, consensus_method=label, calibrate_probs=calibrate_probs, verbose=False
        )
    per_example = info["label_quality"]
    examples = _examples_frame(
        labels.index,
        per_example["consensus_label"],
        per_example["consensus_quality_score"],
        per_example["annotator_agreement"],
        per_example["num_annotations"],
    )
    stats = info["annotator_stats"].reindex(labels.columns)
    # cleanlab gives NaN quality to an annotator who shares no example with
    # others; judge them by the mean CROWDLAB quality of their own labels.
    own = np.nanmean(info["detailed_label_quality"].to_numpy(), axis=0)
    quality = stats["annotator_quality"].to_numpy()
    agreement = stats["agreement_with_consensus"].to_numpy()
    annotators = _annotators_frame(
        labels.columns,
        quality=np.where(np.isnan(quality), own, quality),
        agreement=agreement,
        num=stats["num_examples_labeled"],
        worst=np.where(agreement == 1, -1, stats["worst_class"]),
    )
    return Consensus(examples, annotators, "crowdlab")


def consensus(
    labels_multiannotator: pd.DataFrame,
    pred_probs: np.ndarray | None,
    *,
    method: str,
    n_classes: int,
    calibrate_probs: bool,
    crowdlab_label: str,
    seed: int,
) -> Consensus:
    """Majority vote if ``pred_probs`` is None (round 0) or ``method == 'majority'``, else CROWDLAB.

    ``pred_probs`` : ndarray of shape (N, n_classes) or None.
    ``crowdlab_label`` : how CROWDLAB picks the label, see :func:`crowdlab` (``label``).

    If CROWDLAB collapses every consensus label into one class while the
    annotators used several (a model that predicts one class, mostly single
    labels), the majority vote is returned instead: a one-class consensus could
    not train the next model.
    """
    if method not in CONSENSUS_METHODS:
        known = ", ".join(CONSENSUS_METHODS)
        raise ValueError(f"unknown consensus method {method!r}; choose one of {known}.")
    if pred_probs is None or method == "majority":
        return majority(labels_multiannotator, n_classes=n_classes, seed=seed)
    if np.ndim(pred_probs) != 2 or np.shape(pred_probs)[1] != n_classes:
        raise ValueError(
            f"pred_probs has shape {np.shape(pred_probs)} but there are {n_classes} classes; "
            "predict one probability column per class."
        )
    result = crowdlab(labels_multiannotator, pred_probs, calibrate_probs=calibrate_probs, label=crowdlab_label,
                      seed=seed)
    given = pd.unique(labels_multiannotator.to_numpy().ravel())
    if result.examples["consensus_label"].nunique() < 2 <= len(given[~pd.isna(given)]):
        log.warning("CROWDLAB put all %d examples in one class although the annotators used several "
                    "(the model predicts one class); this round's consensus is the majority vote",
                    len(result.examples))
        return majority(labels_multiannotator, n_classes=n_classes, seed=seed)
    return result


def check_labels(labels_multiannotator: pd.DataFrame, *, n_classes: int) -> pd.DataFrame:
    """Float copy without label-less annotators; fails on unlabelled rows or bad classes."""
    if not isinstance(labels_multiannotator, pd.DataFrame):
        raise TypeError(
            "labels_multiannotator must be a DataFrame (example_id x annotator_id); use to_wide()."
        )
    if n_classes < 2:
        raise ValueError(f"n_classes is {n_classes}; classification needs at least 2 classes.")
    labels = labels_multiannotator.astype(float)
    labels = labels.loc[:, labels.notna().any(axis=0)]
    empty = labels.notna().sum(axis=1) == 0
    if empty.any():
        raise ValueError(
            f"example {labels.index[empty][0]!r} has no label ({int(empty.sum())} such rows); "
            "pass only labelled examples to consensus."
        )
    values = labels.to_numpy()
    given = values[~np.isnan(values)]
    if ((given < 0) | (given >= n_classes) | (given % 1 != 0)).any():
        raise ValueError(
            f"labels must be class indices 0..{n_classes - 1}; map class names to indices first."
        )
    return labels


def check_pred_probs(pred_probs: np.ndarray, *, n_rows: int, name: str) -> np.ndarray:
    """``pred_probs`` as a float array of shape (n_rows, K), K >= 2, rows summing to 1."""
    probs = np.asarray(pred_probs, dtype=float)
    if probs.ndim != 2 or len(probs) != n_rows or probs.shape[1] < 2:
        raise ValueError(
            f"{name} has shape {probs.shape}; expected ({n_rows}, K) with K >= 2 classes."
        )
    valid = np.isfinite(probs).all() and (probs >= 0).all()
    if not valid or not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        raise ValueError(f"{name} must hold finite non-negative probabilities; rows summing to 1.")
    return probs


def break_exact_ties(pred_probs: np.ndarray, *, seed: int) -> np.ndarray:
    """Rows of ``pred_probs`` (N, K) with two equal entries get a seeded jitter below 1e-9.

    Why: cleanlab breaks majority-vote ties with ``pred_probs``, then falls back to
    the global NumPy RNG, and crashes when every shared example stays tied. With
    no equal entries its ``pred_probs`` tie-break always decides, deterministically.
    """
    tied = (np.diff(np.sort(pred_probs, axis=1), axis=1) == 0).any(axis=1)
    if not tied.any():
        return pred_probs
    out = pred_probs.copy()
    rng = np.random.default_rng(seed)
    out[tied] = out[tied] + rng.uniform(0, 1e-9, size=(int(tied.sum()), out.shape[1]))
    out[tied] /= out[tied].sum(axis=1, keepdims=True)
    return out


def _crowdlab_single_labels(labels: pd.DataFrame, pred_probs: np.ndarray) -> Consensus:
    values = labels.to_numpy()
    has = ~np.isnan(values)
    # Each row holds exactly one label (or there are no rows).
    label = np.nanmax(values, axis=1).astype(int) if len(values) else np.zeros(0, dtype=int)
    label_quality = pred_probs[np.arange(len(label)), label]
    ones = np.ones(len(label))
    examples = _examples_frame(labels.index, label, label_quality, ones, has.sum(axis=1))
    annotators = _annotators_frame(
        labels.columns,
        quality=[label_quality[mine].mean() for mine in has.T],
        agreement=np.ones(has.shape[1]),
        num=has.sum(axis=0),
        worst=np.full(has.shape[1], -1),
    )
    return Consensus(examples, annotators, "crowdlab")


def _worst_class(given: np.ndarray, consensus_label: np.ndarray) -> int:
    """Class the annotator's labels agree with the consensus least on; -1 if never wrong."""
    wrong = given != consensus_label
    if not wrong.any():
        return -1
    classes = np.unique(given)
    accuracy = np.array([1 - wrong[given == k].mean() for k in classes])
    count = np.array([(given == k).sum() for k in classes])
    # lowest accuracy, then most labels in that class, then lowest index
    return int(classes[np.lexsort((classes, -count, accuracy))[0]])


def _examples_frame(index, label, quality, agreement, num) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "consensus_label": np.asarray(label, dtype=np.int64),
            "consensus_quality": np.asarray(quality, dtype=float),
            "annotator_agreement": np.asarray(agreement, dtype=float),
            "num_annotations": np.asarray(num, dtype=np.int64),
        },
        index=pd.Index(index, name="example_id"),
    )


def _annotators_frame(ids, *, quality, agreement, num, worst) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "annotator_id": np.asarray(ids, dtype=object),
            "annotator_quality": np.asarray(quality, dtype=float),
            "agreement_with_consensus": np.asarray(agreement, dtype=float),
            "num_examples_labeled": np.asarray(num, dtype=np.int64),
            "worst_class": np.asarray(worst, dtype=np.int64),
        }
    )
    return frame.sort_values("annotator_id", kind="stable").reset_index(drop=True)
