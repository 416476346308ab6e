"""Batches that do not waste labels: near-duplicate removal and k-center mixing.

:class:`CandidateQueue` hands ``select`` the next candidate to try, given the
picks accepted so far. Without embeddings, or with both options off, it is the
score order unchanged.
"""

from __future__ import annotations

import numpy as np

from crowdloop.tasks.scoring.geometry import min_distances, unit_rows

# With k-center mixing, this many times the batch (best scores first) compete on
# the mixed criterion; the rest follow in score order.
SHORTLIST_FACTOR = 10


class CandidateQueue:
    """Candidates in the order a batch should try them.

    Parameters
    ----------
    n : number of candidates, already sorted by score (best first).
    vectors : ndarray of shape (n, D) or None
        Their embeddings; None turns both options off.
    covered : ndarray of shape (L, D) or None
        Embeddings of what is already labeled (k-center distance counts from these too).
    duplicate_threshold : a candidate whose cosine similarity to an accepted
        pick is above this is skipped (listed in ``duplicates``); None = off.
    kcenter_weight : w in [0, 1]; the next candidate minimises
        ``(1 - w) * rank / n + w * (1 - d / 2)`` where ``d`` is its Euclidean
        distance between unit vectors (in [0, 2]) to the nearest covered example
        or accepted pick; 0 = score order.
    batch_size : sets the shortlist (:data:`SHORTLIST_FACTOR` × batch_size).
    """

    def __init__(self, n: int, vectors: np.ndarray | None = None, covered: np.ndarray | None = None, *,
                 duplicate_threshold: float | None = None, kcenter_weight: float = 0.0, batch_size: int = 1):
        if not 0 <= kcenter_weight <= 1:
            raise ValueError(f"kcenter_weight is {kcenter_weight}; set select.kcenter_weight in [0, 1].")
        if vectors is not None and len(vectors) != n:
            raise ValueError(f"got {len(vectors)} embeddings for {n} candidates; pass one per candidate.")
        self.vectors = None if vectors is None else unit_rows(vectors)
        self.threshold = duplicate_threshold if self.vectors is not None else None
        self.weight = kcenter_weight if self.vectors is not None else 0.0
        self.remaining = list(range(n))
        self.accepted: list[int] = []
        self.duplicates: list[int] = []
        self.shortlist = min(n, SHORTLIST_FACTOR * batch_size)
        if self.weight > 0:
            self.distance = min_distances(self.vectors, unit_rows(covered)) if covered is not None and len(covered) \
                else np.full(n, 2.0)
            self.distance = np.minimum(self.distance, 2.0)

    def pop(self) -> int | None:
        """The next candidate index to try (removed from the queue), or None when none is left."""
        while self.remaining:
            candidate = self._next()
            self.remaining.remove(candidate)
            if self._duplicate(candidate):
                self.duplicates.append(candidate)
                continue
            return candidate
        return None

    def accept(self, index: int) -> None:
        """Record that candidate ``index`` went into the batch."""
        self.accepted.append(index)
        if self.weight > 0:
            self.distance = np.minimum(self.distance, min_distances(self.vectors, self.vectors[index:index + 1]))

    def _next(self) -> int:
        short = [i for i in self.remaining if i < self.shortlist]
        if self.weight == 0 or not short:
            return self.remaining[0]
        short = np.asarray(short)
        mixed = (1 - self.weight) * short / max(self.shortlist, 1) + self.weight * (1 - self.distance[short] / 2)
        return int(short[np.argmin(mixed)])

    def _duplicate(self, candidate: int) -> bool:
        if self.threshold is None or not self.accepted:
            return False
        similarity = self.vectors[self.accepted] @ self.vectors[candidate]
        return bool(similarity.max() > self.threshold)
