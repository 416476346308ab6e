"""Which examples to ask about next, and whom to ask.

Follows ActiveLab's batch recipe: rank every pool example by score (lower =
more useful), take at most one new annotation per example per batch, and route
each pick to an annotator who has not labelled it yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BATCH_COLUMNS = ("example_id", "suggested_annotator", "score")
# Written into ``suggested_annotator`` when no annotator is known yet (round 0
# of a fresh campaign): whoever runs the campaign picks.
ANYONE = ""


@dataclass(frozen=True)
class Selection:
    """The chosen batch.

    ``batch``: columns :data:`BATCH_COLUMNS`, lowest score first, at most
    ``batch_size`` rows. ``unroutable``: example ids that ranked high enough to be
    picked but every known annotator has already labelled them (left out of
    ``batch`` so the batch still fills up).
    """

    batch: pd.DataFrame
    unroutable: list[str]


def select_batch(
    scores: pd.Series,
    annotations: pd.DataFrame,
    annotator_quality: pd.Series,
    *,
    batch_size: int,
    max_annotations_per_example: int,
) -> Selection:
    """Pick up to ``batch_size`` examples and suggest an annotator for each.

    Parameters
    ----------
    scores : Series of shape (P,)
        Index example_id (labelled and unlabelled pool), value the score; lower = ask first.
        Equal scores are ordered by example_id.
    annotations : DataFrame with columns example_id, annotator_id (others ignored)
        Every annotation so far.
    annotator_quality : Series, index annotator_id, higher = better
        Annotators seen in ``annotations`` but missing here (or NaN) get the median.
    batch_size : at most this many picks, >= 1.
    max_annotations_per_example : examples with this many annotations are skipped, >= 1.

    Returns
    -------
    Selection
        Each pick goes to the eligible known annotator (one who has not labelled
        the example) with the fewest picks so far in this batch, then the higher
        quality, then the smaller id: the best annotators are asked first but the
        load is spread. Known annotators are those in ``annotations`` or in
        ``annotator_quality``. If none is known, ``suggested_annotator`` is
        :data:`ANYONE` (an empty string) on every row.
    """
    _validate(scores, annotations, annotator_quality, batch_size, max_annotations_per_example)
    quality = _quality_by_annotator(annotations, annotator_quality).to_dict()
    by_example = annotations.groupby("example_id")["annotator_id"]
    labelled_by = by_example.agg(set).to_dict()
    n_annotations = by_example.size().to_dict()

    ranked = pd.DataFrame({"example_id": scores.index.to_numpy(), "score": scores.to_numpy()})
    ranked = ranked.sort_values(["score", "example_id"], kind="stable")
    picks_per_annotator = dict.fromkeys(quality, 0)
    rows, unroutable = [], []
    for example_id, value in zip(ranked["example_id"], ranked["score"]):
        if len(rows) == batch_size:
            break
        if n_annotations.get(example_id, 0) >= max_annotations_per_example:
            continue
        done = labelled_by.get(example_id, set())
        if not picks_per_annotator:
            rows.append((example_id, ANYONE, float(value)))
            continue
        eligible = [a for a in picks_per_annotator if a not in done]
        if not eligible:
            unroutable.append(example_id)
            continue
        chosen = min(eligible, key=lambda a: (picks_per_annotator[a], -quality[a], a))
        picks_per_annotator[chosen] += 1
        rows.append((example_id, chosen, float(value)))
    batch = pd.DataFrame(rows, columns=list(BATCH_COLUMNS)).astype(
        {"example_id": object, "suggested_annotator": object, "score": float}
    )
    return Selection(batch=batch, unroutable=unroutable)


def _quality_by_annotator(annotations: pd.DataFrame, annotator_quality: pd.Series) -> pd.Series:
    """Quality for every known annotator; unknown or NaN quality -> median (0.0 if none)."""
    given = annotator_quality.astype(float)
    known = sorted(set(annotations["annotator_id"]) | set(given.index))
    median = float(given.median()) if given.notna().any() else 0.0
    return given.reindex(known).fillna(median)


def _validate(
    scores: pd.Series,
    annotations: pd.DataFrame,
    annotator_quality: pd.Series,
    batch_size: int,
    max_annotations_per_example: int,
) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size is {batch_size!r}; set select.batch_size to an integer >= 1.")
    cap = max_annotations_per_example
    if not isinstance(cap, (int, np.integer)) or cap < 1:
        raise ValueError(
            f"max_annotations_per_example is {cap!r}; "
            "set select.max_annotations_per_example to an integer >= 1."
        )
    if not isinstance(scores, pd.Series):
        raise TypeError("scores must be a pandas Series indexed by example_id.")
    if scores.index.has_duplicates:
        first = scores.index[scores.index.duplicated()][0]
        raise ValueError(f"scores has example {first!r} twice; score each example once.")
    if scores.isna().any():
        first = scores.index[scores.isna()][0]
        raise ValueError(f"score of example {first!r} is NaN; every example needs a score.")
    missing = {"example_id", "annotator_id"} - set(annotations.columns)
    if missing:
        raise ValueError(f"annotations lack column(s) {sorted(missing)}.")
    if annotator_quality.index.has_duplicates:
        raise ValueError("annotator_quality lists an annotator twice; give one quality each.")
