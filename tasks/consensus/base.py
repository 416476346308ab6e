"""What every consensus method shares: the result's shape, the label matrix, checks and tie-breaks.

Labels here are class indices ``0..K-1`` (:mod:`crowdloop.tasks.round_data` maps the
names); every method also receives the class *names* so that a tie between classes
is broken the same way whatever order ``classes`` has in params.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

EXAMPLE_STATS = ("consensus_label", "consensus_quality", "annotator_agreement", "num_annotations")
ANNOTATOR_STATS = (
    "annotator_id", "annotator_quality", "agreement_with_consensus", "num_examples_labeled",
    "worst_class",
)
# cleanlab warns when no example has two agreeing labels; early rounds often
# look like that, and the low ``annotator_agreement`` already shows it.
NO_AGREEMENT_WARNING = "Annotators do not agree on any example"


@dataclass(frozen=True)
class Consensus:
    """Per-example consensus and per-annotator statistics of one round.

    ``examples``: index ``example_id``, columns :data:`EXAMPLE_STATS`.
    ``annotators``: one row per annotator with at least one label, sorted by
    ``annotator_id``, columns :data:`ANNOTATOR_STATS`; ``worst_class`` is the
    class the annotator most often gets wrong, or -1 when they never disagree
    with the consensus. ``method``: the method that made it (``consensus.method``).
    ``label_quality``: DataFrame of shape (N, M) like the label matrix (index example_id,
    columns the annotators of ``annotators``): the method's probability that each given
    label is the true class (NaN where the annotator gave none); what
    :mod:`crowdloop.tasks.annotator_watch` reads to see an annotator's recent labels go bad.
    """

    examples: pd.DataFrame
    annotators: pd.DataFrame
    method: str
    label_quality: pd.DataFrame | None = None


def to_wide(annotations: pd.DataFrame, *, example_ids: Sequence[str]) -> pd.DataFrame:
    """Long annotations to cleanlab's wide ``labels_multiannotator``.

    Parameters
    ----------
    annotations : DataFrame with columns example_id, annotator_id, label (int)
    example_ids : the rows wanted, in order; examples nobody labeled are all-NaN rows.

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
            f"annotator {row['annotator_id']!r} labeled example {row['example_id']!r} more than "
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


def check_label_matrix(labels_multiannotator: pd.DataFrame, *, n_classes: int) -> pd.DataFrame:
    """Float copy without label-less annotators; fails on unlabeled rows or bad classes."""
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
            "pass only labeled examples to consensus."
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


def tie_noise(n_rows: int, n_classes: int, *, seed: int, classes: Sequence[str] | None = None) -> np.ndarray:
    """Seeded uniform draws of shape (n_rows, K) in [0, 1), one per example and class.

    With ``classes`` (the K names) column k holds the draw of ``classes[k]``'s place in
    the sorted names, so adding a fraction of it to tied counts or probabilities breaks
    the tie by a rule on class names: reordering ``classes`` in params.yaml moves the
    draws with their classes. Without, the draws follow the columns.
    """
    draws = np.random.default_rng(seed).random((n_rows, n_classes))
    if classes is None:
        return draws
    if len(classes) != n_classes:
        raise ValueError(f"got {len(classes)} class names for {n_classes} classes.")
    place = np.argsort(np.argsort(np.asarray(classes, dtype=str), kind="stable"), kind="stable")
    return draws[:, place]


def break_exact_ties(pred_probs: np.ndarray, *, seed: int, classes: Sequence[str] | None = None) -> np.ndarray:
    """Rows of ``pred_probs`` (N, K) with two equal entries get a seeded jitter below 1e-9.

    Why: cleanlab breaks majority-vote ties with ``pred_probs``, then falls back to
    the global NumPy RNG, and crashes when every shared example stays tied. With
    no equal entries its ``pred_probs`` tie-break always decides, deterministically.
    ``classes``: the jitter follows the class names (:func:`tie_noise`).
    """
    tied = (np.diff(np.sort(pred_probs, axis=1), axis=1) == 0).any(axis=1)
    if not tied.any():
        return pred_probs
    out = pred_probs.copy()
    out[tied] = out[tied] + 1e-9 * tie_noise(int(tied.sum()), out.shape[1], seed=seed, classes=classes)
    out[tied] /= out[tied].sum(axis=1, keepdims=True)
    return out


def vote_counts(values: np.ndarray, n_classes: int) -> np.ndarray:
    """Votes per class of each row, shape (N, K), from labels (N, M) with NaN = no label."""
    return np.stack([(values == k).sum(axis=1) for k in range(n_classes)], axis=1).astype(float)


def given_label_quality(labels: pd.DataFrame, posterior: np.ndarray) -> pd.DataFrame:
    """``posterior`` (N, K) read at each given label of ``labels`` (N, M): the probability that the
    label is right, shape (N, M), NaN where no label was given."""
    values = labels.to_numpy()
    has = ~np.isnan(values)
    out = np.full(values.shape, np.nan)
    rows, cols = np.nonzero(has)
    out[rows, cols] = posterior[rows, values[rows, cols].astype(int)]
    return pd.DataFrame(out, index=labels.index, columns=labels.columns)


def agreement_stats(values: np.ndarray, label: np.ndarray) -> tuple[list, list, list]:
    """Per annotator (columns of ``values`` (N, M)): agreement with ``label`` (N,) on their labels,
    the same on examples someone else labeled too (their own rate where they share none), and
    :func:`worst_class`."""
    num = (~np.isnan(values)).sum(axis=1)
    shared_rate, worst = [], []
    for column in values.T:
        mine = ~np.isnan(column)
        agrees = column == label
        # Agreement on shared examples is what tells annotators apart; someone
        # who only labeled single-label examples trivially agrees on those.
        shared = mine & (num >= 2)
        shared_rate.append(agrees[shared].mean() if shared.any() else agrees[mine].mean())
        worst.append(worst_class(column[mine].astype(int), label[mine]))
    return shared_rate, agreement_rates(values, label), worst


def agreement_rates(values: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Per annotator (columns of ``values`` (N, M), each with a label), the share of their labels
    equal to ``label`` (N,): cleanlab's ``agreement_with_consensus``."""
    given = ~np.isnan(values)
    return ((values == label[:, None]) & given).sum(axis=0) / given.sum(axis=0)


def only_single_labels(values: np.ndarray) -> bool:
    """Every row of ``values`` (N, M) holds exactly one label (True for N == 0): cleanlab's
    multi-annotator functions then neither calibrate nor weigh annotators."""
    return bool(((~np.isnan(values)).sum(axis=1) == 1).all())


def from_posterior(labels: pd.DataFrame, posterior: np.ndarray, annotator_quality: np.ndarray, *,
                   classes: Sequence[str], seed: int, method: str) -> Consensus:
    """A :class:`Consensus` from a method's posterior over the classes.

    ``labels`` : checked label matrix (N, M); ``posterior`` : ndarray (N, K), columns in the
    order of ``classes``; ``annotator_quality`` : (M,) in the order of ``labels.columns``.
    The consensus label is the most probable class (an exact tie broken by class name,
    :func:`break_exact_ties`), its quality the posterior probability of that class.
    """
    values = labels.to_numpy()
    label = np.argmax(break_exact_ties(posterior, seed=seed, classes=classes), axis=1)
    counts = vote_counts(values, len(classes))
    num = counts.sum(axis=1)
    examples = examples_frame(labels.index, label, posterior[np.arange(len(label)), label],
                              counts[np.arange(len(label)), label] / np.maximum(num, 1), num)
    _, rate, worst = agreement_stats(values, label)
    annotators = annotators_frame(labels.columns, quality=annotator_quality, agreement=rate,
                                  num=(~np.isnan(values)).sum(axis=0), worst=worst)
    return Consensus(examples, annotators, method, given_label_quality(labels, posterior))


def worst_class(given: np.ndarray, consensus_label: np.ndarray) -> int:
    """Class the annotator's labels agree with the consensus least on; -1 if never wrong."""
    wrong = given != consensus_label
    if not wrong.any():
        return -1
    classes = np.unique(given)
    accuracy = np.array([1 - wrong[given == k].mean() for k in classes])
    count = np.array([(given == k).sum() for k in classes])
    # lowest accuracy, then most labels in that class, then lowest index
    return int(classes[np.lexsort((classes, -count, accuracy))[0]])


def examples_frame(index, label, quality, agreement, num) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "consensus_label": np.asarray(label, dtype=np.int64),
            "consensus_quality": np.asarray(quality, dtype=float),
            "annotator_agreement": np.asarray(agreement, dtype=float),
            "num_annotations": np.asarray(num, dtype=np.int64),
        },
        index=pd.Index(index, name="example_id"),
    )


def annotators_frame(ids, *, quality, agreement, num, worst) -> pd.DataFrame:
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
