"""Embedding geometry for batch strategies: k-center, k-means++ seeding, centroids, cosine.

Pure NumPy (scikit-learn's KMeans for clustering). Each ordering function
returns a full permutation of the candidates: the greedy picks first, then the
rest by the same criterion, so the caller can skip picks it cannot route and
still fill a batch.
"""

from __future__ import annotations

import numpy as np


def min_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distance (N,) from each row of ``X`` (N, D) to its nearest row of ``centers`` (C, D).

    ``inf`` everywhere when there is no center.
    """
    X = np.asarray(X, dtype=float)
    out = np.full(len(X), np.inf)
    for start in range(0, len(centers), 512):  # bounded memory: (N, 512) at a time
        block = np.asarray(centers[start:start + 512], dtype=float)
        squared = (X ** 2).sum(1)[:, None] - 2 * X @ block.T + (block ** 2).sum(1)[None, :]
        out = np.minimum(out, np.sqrt(np.clip(squared, 0, None)).min(axis=1))
    return out


def k_center_order(X: np.ndarray, centers: np.ndarray, *, n_greedy: int, seed: int) -> np.ndarray:
    """Greedy k-center (core-set) order of the rows of ``X``.

    Parameters
    ----------
    X : ndarray of shape (U, D)
        Candidates.
    centers : ndarray of shape (L, D)
        Points already covered (the labeled examples); L may be 0.
    n_greedy : how many picks to make greedily; each is the candidate farthest
        from every center and every earlier pick.
    seed : with no center, the first pick is drawn with ``default_rng(seed)``.

    Returns
    -------
    order : ndarray of shape (U,)
        Candidate indices, the greedy picks first, then the others by distance to
        the picks and centers, farthest first.
    """
    n = len(X)
    if n == 0:
        return np.zeros(0, dtype=int)
    distance = min_distances(X, centers)
    picks: list[int] = []
    for _ in range(min(n_greedy, n)):
        if np.isinf(distance).all():
            choice = int(np.random.default_rng(seed).integers(n))
        else:
            choice = int(np.argmax(np.where(np.isin(np.arange(n), picks), -np.inf, distance)))
        picks.append(choice)
        distance = np.minimum(distance, min_distances(X, X[choice:choice + 1]))
    return _then_rest(picks, -distance)


def kmeans_pp_order(G: np.ndarray, *, n_greedy: int, seed: int) -> np.ndarray:
    """k-means++ seeding order of the rows of ``G`` (U, E) (BADGE's batch rule).

    The first pick is the row of largest norm; each next one is drawn with
    probability proportional to its squared distance to the nearest pick
    (``default_rng(seed)``). Returns a permutation (U,): the seeds, then the
    rest farthest first.
    """
    n = len(G)
    if n == 0:
        return np.zeros(0, dtype=int)
    rng = np.random.default_rng(seed)
    picks = [int(np.argmax((np.asarray(G, dtype=float) ** 2).sum(1)))]
    distance = min_distances(G, G[picks])
    for _ in range(min(n_greedy, n) - 1):
        weights = distance ** 2
        weights[picks] = 0.0
        if weights.sum() <= 0:  # every candidate coincides with a pick
            break
        choice = int(rng.choice(n, p=weights / weights.sum()))
        picks.append(choice)
        distance = np.minimum(distance, min_distances(G, G[choice:choice + 1]))
    return _then_rest(picks, -distance)


def centroid_order(X: np.ndarray, *, n_clusters: int, seed: int) -> np.ndarray:
    """Cold-start order of the rows of ``X`` (U, D): k-means, the row nearest each centroid first.

    Representatives come largest cluster first; the other rows follow, nearest
    to their centroid first. Returns a permutation (U,).
    """
    from sklearn.cluster import KMeans

    n = len(X)
    if n == 0:
        return np.zeros(0, dtype=int)
    k = max(1, min(n_clusters, n))
    model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(np.asarray(X, dtype=float))
    distance = np.linalg.norm(X - model.cluster_centers_[model.labels_], axis=1)
    sizes = np.bincount(model.labels_, minlength=k)
    picks = []
    for cluster in np.argsort(-sizes, kind="stable"):
        members = np.flatnonzero(model.labels_ == cluster)
        if len(members):
            picks.append(int(members[np.argmin(distance[members])]))
    return _then_rest(picks, distance)


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows of ``X`` (N, D) scaled to unit length (zero rows stay zero)."""
    X = np.asarray(X, dtype=float)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def _then_rest(picks: list[int], key: np.ndarray) -> np.ndarray:
    """``picks`` in order, then every other index by ascending ``key`` (stable)."""
    chosen = np.zeros(len(key), dtype=bool)
    chosen[picks] = True
    rest = np.flatnonzero(~chosen)
    rest = rest[np.argsort(key[rest], kind="stable")]
    return np.concatenate([np.asarray(picks, dtype=int), rest])
