"""Routing: which annotator should label each pick of a batch.

An annotator is eligible for an example when they have not labeled it, are not
flagged (``excluded``: their recent labels fell below ``routing.min_quality``,
:mod:`.annotator_watch`), have room left this round (``capacity``), cost no more
than the money left, and (in simulation) actually hold an answer for it. Among the
eligible:

* with a capacity, the highest CROWDLAB annotator quality first (the best
  annotators fill up, then the next best);
* without one, the fewest picks so far this round, then the higher quality,
  so the load is spread and nobody gets the whole batch.

Ties go to the smaller annotator id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

# Written into ``suggested_annotator`` when no annotator is known yet (round 0
# of a fresh campaign): whoever runs the campaign picks.
ANYONE = ""


@dataclass(frozen=True)
class Routing:
    """Routing options of one round.

    capacity : most picks per annotator this round; None = no limit.
    costs : cost of one annotation per annotator id; others cost ``default_cost``.
    holders : simulation only: example_id -> annotators who hold an answer for it
        (an example missing from it has none). None = anyone may be asked.
    excluded : annotators never asked (flagged by :mod:`crowdloop.tasks.annotator_watch`).
    """

    capacity: int | None = None
    costs: Mapping[str, float] | None = None
    default_cost: float = 1.0
    holders: Mapping[str, set] | None = None
    excluded: frozenset = frozenset()


class Router:
    """Routes picks one at a time, remembering each annotator's load this round.

    Parameters
    ----------
    annotations : DataFrame with columns example_id, annotator_id
        Every annotation so far.
    annotator_quality : Series, index annotator_id, higher = better
        Annotators known from ``annotations`` or ``routing.holders`` but missing
        here (or NaN) get the median.
    routing : Routing
    """

    def __init__(self, annotations: pd.DataFrame, annotator_quality: pd.Series, routing: Routing):
        if routing.capacity is not None and routing.capacity < 1:
            raise ValueError(f"capacity is {routing.capacity}; set routing.capacity_per_annotator >= 1 or null.")
        self.routing = routing
        self.labeled_by = annotations.groupby("example_id")["annotator_id"].agg(set).to_dict()
        known = set(annotations["annotator_id"]) | set(annotator_quality.index)
        for held in (routing.holders or {}).values():
            known |= set(held)
        given = annotator_quality.astype(float)
        median = float(given.median()) if given.notna().any() else 0.0
        self.quality = given.reindex(sorted(known)).fillna(median).to_dict()
        self.load = dict.fromkeys(self.quality, 0)

    def cost(self, annotator: str) -> float:
        """Cost of one annotation by ``annotator`` (:data:`ANYONE`: the default cost)."""
        return float((self.routing.costs or {}).get(annotator, self.routing.default_cost))

    def route(self, example_id: str, *, money_left: float | None = None) -> str | None:
        """The annotator to ask about ``example_id``, or None when nobody is eligible.

        :data:`ANYONE` when no annotator is known at all (outside simulation).
        Does not count the pick: call :meth:`take` once it is in the batch.
        """
        if not self.quality and self.routing.holders is None:
            return ANYONE if money_left is None or self.cost(ANYONE) <= money_left else None
        done = self.labeled_by.get(example_id, set())
        candidates = self.quality if self.routing.holders is None else self.routing.holders.get(example_id, ())
        capacity = self.routing.capacity
        eligible = [a for a in candidates if a not in done and a not in self.routing.excluded
                    and (capacity is None or self.load[a] < capacity)
                    and (money_left is None or self.cost(a) <= money_left)]
        if not eligible:
            return None
        if capacity is None:
            return min(eligible, key=lambda a: (self.load[a], -self.quality[a], a))
        return min(eligible, key=lambda a: (-self.quality[a], self.load[a], a))

    def spent(self, money_left: float | None = None) -> bool:
        """Whether nobody can take another pick this round, whatever the example: every annotator not
        excluded is at ``capacity`` or costs more than ``money_left``."""
        if not self.quality and self.routing.holders is None:
            return money_left is not None and self.cost(ANYONE) > money_left
        capacity = self.routing.capacity
        return not any(a not in self.routing.excluded and (capacity is None or self.load[a] < capacity)
                       and (money_left is None or self.cost(a) <= money_left) for a in self.quality)

    def take(self, example_id: str, annotator: str) -> None:
        """Count ``annotator``'s pick of ``example_id`` this round."""
        if annotator != ANYONE:
            self.load[annotator] += 1
            self.labeled_by.setdefault(example_id, set()).add(annotator)


def assignments(batch: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One table per suggested annotator (:data:`ANYONE` rows under ``"unassigned"``), batch order kept."""
    names = batch["suggested_annotator"].fillna(ANYONE).replace({ANYONE: "unassigned"})
    return {str(name): rows.reset_index(drop=True) for name, rows in batch.groupby(names, sort=True)}
