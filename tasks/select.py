"""Which examples to ask about next, and whom to ask.

Follows ActiveLab's batch recipe: rank every pool example by score (lower =
more useful), take at most one new annotation per example per batch, and route
each pick to an annotator who has not labeled it yet (:mod:`.route`). Optional:
skip near-duplicates and mix the score with k-center distance (:mod:`.diversity`),
and stop when the money left is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crowdloop.tasks.diversity import CandidateQueue
from crowdloop.tasks.route import ANYONE, Router, Routing
from crowdloop.tasks.schema import PICK_COLUMNS

__all__ = ["ANYONE", "Diversity", "Routing", "Selection", "select_batch"]
# Without diversity options, this many times the batch of the lowest scores are ranked first (more if needed).
STREAM_FACTOR = 20


@dataclass(frozen=True)
class Diversity:
    """Diversity options: embeddings (index example_id, one row per pool example) and what they switch on.

    ``covered``: embeddings (L, D) of the examples already labeled, for k-center distance.
    """

    embeddings: pd.DataFrame
    covered: np.ndarray | None = None
    duplicate_threshold: float | None = None
    kcenter_weight: float = 0.0


@dataclass(frozen=True)
class Selection:
    """The chosen batch.

    ``picks``: columns schema.PICK_COLUMNS, in pick order, at most ``batch_size``
    rows. ``unroutable``: example ids that ranked high enough to be picked but had
    no eligible annotator (all labeled it, full, too expensive, or in simulation
    none holds an answer); left out of ``picks`` so the batch still fills up.
    ``duplicates``: ids skipped as near-duplicates of a pick. ``exhausted``: picking stopped because
    every annotator was at capacity or cost more than the money left; the candidates after that
    point are not ``unroutable``.
    """

    picks: pd.DataFrame
    unroutable: list[str]
    duplicates: list[str] = field(default_factory=list)
    exhausted: bool = False  # the batch is short because nobody could take another pick (capacity, money)


def select_batch(
    scores: pd.Series,
    annotations: pd.DataFrame,
    annotator_quality: pd.Series,
    *,
    batch_size: int,
    max_annotations_per_example: int,
    routing: Routing | None = None,
    diversity: Diversity | None = None,
    money_left: float | None = None,
) -> Selection:
    """Pick up to ``batch_size`` examples and suggest an annotator for each.

    Parameters
    ----------
    scores : Series of shape (P,)
        Index example_id (labeled and unlabeled pool examples), value the score; lower = ask first.
        Equal scores are ordered by example_id.
    annotations : DataFrame with columns example_id, annotator_id (others ignored)
        Every annotation so far.
    annotator_quality : Series, index annotator_id, higher = better
        Annotators seen in ``annotations`` but missing here (or NaN) get the median.
    batch_size : at most this many picks, >= 0.
    max_annotations_per_example : examples with this many annotations are skipped, >= 1.
    routing : capacity, costs and (simulation) holders; see :mod:`.route`. None = defaults.
    diversity : near-duplicate and k-center options; None = score order.
    money_left : stop picking once the next pick would cost more than this; None = no limit.

    Returns
    -------
    Selection
        Known annotators are those in ``annotations``, ``annotator_quality`` or
        ``routing.holders``. If none is known, ``suggested_annotator`` is
        :data:`ANYONE` (an empty string) on every row.
    """
    _validate(scores, annotations, annotator_quality, batch_size, max_annotations_per_example)
    counts = annotations.groupby("example_id").size()
    full = counts.index[counts >= max_annotations_per_example]
    open_ = scores[~scores.index.isin(full)] if len(full) else scores
    # Only the best candidates are ranked: the batch is chosen from the first ones. When the
    # routing skips so many that they run out, twice as many are ranked and the batch is chosen
    # again from the start, so the picks are exactly those of ranking the whole pool.
    head = STREAM_FACTOR * max(batch_size, 1) if diversity is None else len(open_)
    while True:
        selection, used_up = _choose(_ranked(open_, head), annotations, annotator_quality, batch_size=batch_size,
                                     routing=routing, diversity=diversity, money_left=money_left)
        if not used_up or head >= len(open_):
            return selection
        head *= 2


def _ranked(scores: pd.Series, head: int) -> pd.DataFrame:
    """The ``head`` lowest ``scores`` (more where the last one is tied), by score then example_id."""
    values = scores.to_numpy()
    if head < len(values):
        threshold = np.partition(values, head - 1)[head - 1]
        scores = scores[values <= threshold]
    ranked = pd.DataFrame({"example_id": scores.index.to_numpy(), "score": scores.to_numpy()})
    return ranked.sort_values(["score", "example_id"], kind="stable").reset_index(drop=True)


def _choose(ranked: pd.DataFrame, annotations: pd.DataFrame, annotator_quality: pd.Series, *, batch_size: int,
            routing: Routing | None, diversity: Diversity | None,
            money_left: float | None) -> tuple[Selection, bool]:
    """The batch from the candidates ``ranked`` (best first), and whether it tried them all."""
    router = Router(annotations, annotator_quality, routing or Routing())
    ids, values = ranked["example_id"].tolist(), ranked["score"].to_numpy()
    queue = _queue(ids, diversity, batch_size)
    rows, unroutable = [], []
    spent = 0.0
    while len(rows) < batch_size:
        index = queue.pop()
        if index is None:
            break
        example_id = ids[index]
        left = None if money_left is None else money_left - spent
        annotator = router.route(example_id, money_left=left)
        if annotator is None and router.spent(left):
            break  # nobody can take another pick: the rest of the pool is not "unroutable"
        if annotator is None:
            unroutable.append(example_id)
            continue
        router.take(example_id, annotator)
        queue.accept(index)
        cost = router.cost(annotator)
        spent += cost
        rows.append((example_id, annotator, float(values[index]), cost))
    picks = pd.DataFrame(rows, columns=list(PICK_COLUMNS)).astype(
        {"example_id": object, "suggested_annotator": object, "score": float, "cost": float}
    )
    exhausted = len(rows) < batch_size and router.spent(None if money_left is None else money_left - spent)
    selection = Selection(picks=picks, unroutable=unroutable, duplicates=[ids[i] for i in queue.duplicates],
                          exhausted=exhausted)
    return selection, len(rows) < batch_size and not queue.remaining and not exhausted


def _queue(ids: list, diversity: Diversity | None, batch_size: int) -> CandidateQueue:
    if diversity is None or (diversity.duplicate_threshold is None and diversity.kcenter_weight == 0):
        return CandidateQueue(len(ids))
    missing = [e for e in ids if e not in diversity.embeddings.index]
    if missing:
        raise ValueError(f"example {missing[0]!r} has no embedding; pass one per pool example.")
    return CandidateQueue(len(ids), diversity.embeddings.loc[ids].to_numpy(), diversity.covered,
                          duplicate_threshold=diversity.duplicate_threshold,
                          kcenter_weight=diversity.kcenter_weight, batch_size=batch_size)


def _validate(
    scores: pd.Series,
    annotations: pd.DataFrame,
    annotator_quality: pd.Series,
    batch_size: int,
    max_annotations_per_example: int,
) -> None:
    # 0 is a valid batch: what a spent budget leaves.
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 0:
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
