"""Acquisition strategies: one interface, each a pure function of the round's arrays.

A strategy is ``fn(pool: Pool, *, seed: int) -> (scores_labeled (N,), scores_unlabeled (U,))``
where LOWER = ASK FIRST and both pools share one scale, so ``select`` ranks
re-labelling (a labelled example) against a first label (an unlabelled one) in
one list. Scores must be finite; their range is the strategy's own.

* Per-example scores in [0, 1]: ``activelab``, ``activelab_ensemble``,
  ``least_confidence``, ``margin``, ``entropy``, ``qbc``, ``bald``, ``random``.
  How the uncertainty family scores a labelled example is described in
  :mod:`crowdloop.tasks.uncertainty` (labels mixed in as pseudo-counts).
* ``good_random``: the example's annotation count plus a uniform draw, so
  unlabelled examples come first, then the least-annotated, in random order.
* Batch strategies (``coreset``, ``badge``, ``cold_start``) order the unlabelled
  pool as a set: score ``rank / U`` in [0, 1). Labelled examples come after all
  of them, in ``[1, 2]``, by least confidence of their annotation-mixed
  probabilities (by annotation count when there is no model yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdloop.tasks import geometry, uncertainty
from crowdloop.tasks.activelab import activelab as _activelab
from crowdloop.tasks.activelab import activelab_ensemble as _activelab_ensemble

# Batch strategies order this many times the batch greedily, so picks that
# select skips (capped, unroutable, duplicates) are replaced by greedy ones too.
GREEDY_FACTOR = 4


@dataclass(frozen=True)
class Pool:
    """What a strategy may read about one round.

    Attributes
    ----------
    labels_multiannotator : DataFrame of shape (N, M)
        Class indices, NaN = not labelled by that annotator.
    n_unlabeled : U, examples nobody labelled yet.
    n_classes : K
    pred_probs, pred_probs_unlabeled : ndarray of shape (N, K), (U, K) or None
        Out-of-sample probabilities (labelled) and the fold models' mean (pool).
    fold_pred_probs, fold_pred_probs_unlabeled : ndarray of shape (F, N, K), (F, U, K) or None
        Each fold model on every example. For a labelled example F-1 of them saw
        it in training, so they are more confident on it than ``pred_probs``.
    embeddings, embeddings_unlabeled : ndarray of shape (N, D), (U, D) or None
        Encoder embeddings (head backend) or the fine-tuned model's pooled states.
    posterior_probs, posterior_probs_unlabeled : ndarray of shape (S, N, K), (S, U, K) or None
        Posterior samples for BALD: MC-dropout passes (fine-tune) or the fold models (head).
    batch_size : how many picks the round asks for (batch strategies order this many greedily).
    """

    labels_multiannotator: pd.DataFrame
    n_unlabeled: int
    n_classes: int
    pred_probs: np.ndarray | None = None
    pred_probs_unlabeled: np.ndarray | None = None
    fold_pred_probs: np.ndarray | None = None
    fold_pred_probs_unlabeled: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    embeddings_unlabeled: np.ndarray | None = None
    posterior_probs: np.ndarray | None = None
    posterior_probs_unlabeled: np.ndarray | None = None
    batch_size: int = 1

    @property
    def n_labeled(self) -> int:
        return len(self.labels_multiannotator)

    def require(self, strategy: str, *names: str) -> None:
        """Fail with one sentence when a field ``strategy`` needs is None."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"the {strategy} strategy needs {', '.join(missing)}, which this round "
                             "does not have; train a model first or choose another strategy.")

    def counts(self) -> np.ndarray:
        """Labels per class of each labelled example, shape (N, K)."""
        return uncertainty.label_counts(self.labels_multiannotator, self.n_classes)


Strategy = Callable[..., tuple[np.ndarray, np.ndarray]]


def random_scores(n_labeled: int, n_unlabeled: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform [0, 1) scores from ``default_rng(seed)``: shapes (n_labeled,), (n_unlabeled,)."""
    if n_labeled < 0 or n_unlabeled < 0:
        raise ValueError(
            f"pool sizes must be >= 0, got {n_labeled} labelled and {n_unlabeled} unlabelled."
        )
    rng = np.random.default_rng(seed)
    return rng.random(n_labeled), rng.random(n_unlabeled)


def activelab(pool: Pool, *, seed: int):
    """cleanlab ActiveLab on the out-of-sample probabilities."""
    pool.require("activelab", "pred_probs", "pred_probs_unlabeled")
    return _activelab(pool.labels_multiannotator, pool.pred_probs, pool.pred_probs_unlabeled, seed=seed)


def activelab_ensemble(pool: Pool, *, seed: int):
    """cleanlab ActiveLab over the fold models as an ensemble (labelled rows: see ``Pool``)."""
    pool.require("activelab_ensemble", "fold_pred_probs", "fold_pred_probs_unlabeled")
    return _activelab_ensemble(pool.labels_multiannotator, pool.fold_pred_probs,
                               pool.fold_pred_probs_unlabeled, seed=seed)


def random(pool: Pool, *, seed: int):
    """Uniform random order over both pools."""
    return random_scores(pool.n_labeled, pool.n_unlabeled, seed=seed)


def good_random(pool: Pool, *, seed: int):
    """Random among the least-annotated, unlabelled first (ActiveLab paper's stronger baseline)."""
    s_l, s_u = random_scores(pool.n_labeled, pool.n_unlabeled, seed=seed)
    return s_l + pool.counts().sum(axis=1), s_u


def _per_example(measure: Callable[[np.ndarray], np.ndarray], name: str):
    def strategy(pool: Pool, *, seed: int):
        pool.require(name, "pred_probs", "pred_probs_unlabeled")
        mixed = uncertainty.with_annotations(pool.pred_probs, pool.counts())
        return measure(mixed), measure(pool.pred_probs_unlabeled)

    strategy.__name__ = name
    strategy.__doc__ = f"``uncertainty.{measure.__name__}`` of the probabilities (labelled: annotations mixed in)."
    return strategy


least_confidence = _per_example(uncertainty.least_confidence, "least_confidence")
margin = _per_example(uncertainty.margin, "margin")
entropy = _per_example(uncertainty.entropy, "entropy")


def qbc(pool: Pool, *, seed: int):
    """Query-by-committee: vote entropy of the fold models' argmax votes.

    A labelled example's annotators vote alongside the fold models.
    """
    pool.require("qbc", "fold_pred_probs", "fold_pred_probs_unlabeled")
    votes_l = np.hstack([pool.fold_pred_probs.argmax(-1).T.astype(float),
                         pool.labels_multiannotator.to_numpy(dtype=float)])
    votes_u = pool.fold_pred_probs_unlabeled.argmax(-1).T.astype(float)
    return (uncertainty.vote_entropy(votes_l, pool.n_classes),
            uncertainty.vote_entropy(votes_u, pool.n_classes))


def bald(pool: Pool, *, seed: int):
    """BALD: mutual information between label and model from posterior samples.

    Fine-tune backend: the samples are MC-dropout passes of the model trained on
    all labels. Head backend (a deterministic logistic regression): the fold
    models stand in as posterior samples, a bootstrap-like approximation. A
    labelled example's samples each have its annotations mixed in.
    """
    pool.require("bald", "posterior_probs", "posterior_probs_unlabeled")
    mixed = uncertainty.with_annotations(pool.posterior_probs, pool.counts())
    return uncertainty.bald(mixed), uncertainty.bald(pool.posterior_probs_unlabeled)


def coreset(pool: Pool, *, seed: int):
    """Greedy k-center on embeddings: the unlabelled example farthest from everything covered."""
    pool.require("coreset", "embeddings", "embeddings_unlabeled")
    order = geometry.k_center_order(pool.embeddings_unlabeled, pool.embeddings,
                                    n_greedy=GREEDY_FACTOR * pool.batch_size, seed=seed)
    return _labelled_last(pool), _rank_scores(order)


def badge(pool: Pool, *, seed: int):
    """BADGE: k-means++ seeding on last-layer gradient embeddings.

    For a softmax head on features x the loss gradient w.r.t. the last layer,
    at the predicted label, is ``(p - onehot(argmax p)) ⊗ x`` (shape K·D): long
    when the model is unsure, pointing in different directions for different
    regions, so the seeding picks uncertain and diverse examples at once.
    """
    pool.require("badge", "pred_probs_unlabeled", "embeddings_unlabeled")
    probs = pool.pred_probs_unlabeled
    residual = probs - np.eye(pool.n_classes)[probs.argmax(axis=1)]
    gradients = (residual[:, :, None] * pool.embeddings_unlabeled[:, None, :]).reshape(len(probs), -1)
    order = geometry.kmeans_pp_order(gradients, n_greedy=GREEDY_FACTOR * pool.batch_size, seed=seed)
    return _labelled_last(pool), _rank_scores(order)


def cold_start(pool: Pool, *, seed: int):
    """Cluster the unlabelled embeddings into ``batch_size`` groups; the example nearest each centroid first."""
    pool.require("cold_start", "embeddings_unlabeled")
    order = geometry.centroid_order(pool.embeddings_unlabeled, n_clusters=pool.batch_size, seed=seed)
    return _labelled_last(pool), _rank_scores(order)


def _rank_scores(order: np.ndarray) -> np.ndarray:
    """Score rank / U for a permutation ``order`` (U,): the first index gets 0."""
    scores = np.empty(len(order))
    scores[order] = np.arange(len(order)) / max(len(order), 1)
    return scores


def _labelled_last(pool: Pool) -> np.ndarray:
    """Labelled scores in [1, 2]: after every unlabelled example, least confident first."""
    if pool.n_labeled == 0:
        return np.zeros(0)
    if pool.pred_probs is None:
        counts = pool.counts().sum(axis=1)
        return 1.0 + counts / counts.max()
    mixed = uncertainty.with_annotations(pool.pred_probs, pool.counts())
    return 1.0 + uncertainty.least_confidence(mixed)


BUILTIN: dict[str, Strategy] = {
    "activelab": activelab,
    "activelab_ensemble": activelab_ensemble,
    "random": random,
    "good_random": good_random,
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
    "coreset": coreset,
    "badge": badge,
    "qbc": qbc,
    "bald": bald,
    "cold_start": cold_start,
}
# Strategies that rank from embeddings alone, so they can run before any model exists.
MODEL_FREE = ("random", "good_random", "cold_start")
