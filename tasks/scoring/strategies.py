"""Acquisition strategies: one interface, each a pure function of the round's arrays.

A strategy is ``fn(inputs: ScoreInputs, *, seed: int) -> (scores_labeled (N,), scores_unlabeled (U,))``
where LOWER = ASK FIRST and labeled and unlabeled examples share one scale, so ``select`` ranks
re-labeling (a labeled example) against a first label (an unlabeled one) in
one list. Scores must be finite; their range is the strategy's own.

* Per-example scores in [0, 1]: ``activelab``, ``activelab_ensemble``,
  ``least_confidence``, ``margin``, ``entropy``, ``qbc``, ``bald``, ``random``.
  How the uncertainty family scores a labeled example is described in
  :mod:`crowdloop.tasks.scoring.uncertainty` (labels mixed in as pseudo-counts).
* ``good_random``: the example's annotation count plus a uniform draw, so
  unlabeled examples come first, then the least-annotated, in random order.
* ``agreement`` (model-free): ``random``'s uniform draws in [0, 1), the labeled
  examples' smallest ones dealt to those whose vote is tied.
* ``auto`` (the default) is not a scorer: :func:`crowdloop.tasks.scoring.effective_strategy`
  resolves it each round to ``score.signal_strategy`` (``activelab``) when the model
  carries signal, else to ``score.no_signal_strategy`` (:mod:`crowdloop.tasks.signal`).
* Batch strategies (``coreset``, ``badge``, ``cold_start``) order the unlabeled
  examples as a set: score ``rank / U`` in [0, 1). Labeled examples come after all
  of them, in ``[1, 2]``, by least confidence of their annotation-mixed
  probabilities (by annotation count when there is no model yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdloop.tasks.consensus.base import vote_counts
from crowdloop.tasks.errors import DataError
from crowdloop.tasks.scoring import geometry, uncertainty
from crowdloop.tasks.scoring.activelab import activelab as _activelab
from crowdloop.tasks.scoring.activelab import activelab_ensemble as _activelab_ensemble

# Batch strategies order this many times the batch greedily, so picks that
# select skips (capped, unroutable, duplicates) are replaced by greedy ones too.
GREEDY_FACTOR = 4


@dataclass(frozen=True)
class ScoreInputs:
    """What a strategy may read about one round.

    Attributes
    ----------
    labels_multiannotator : DataFrame of shape (N, M)
        Class indices, NaN = not labeled by that annotator.
    n_unlabeled : U, examples nobody labeled yet.
    n_classes : K
    pred_probs, pred_probs_unlabeled : ndarray of shape (N, K), (U, K) or None
        Out-of-sample probabilities (labeled) and the fold models' mean (unlabeled).
    fold_pred_probs, fold_pred_probs_unlabeled : ndarray of shape (F, N, K), (F, U, K) or None
        Each fold model on every example. For a labeled example F-1 of them saw
        it in training, so they are more confident on it than ``pred_probs``.
    embeddings, embeddings_unlabeled : ndarray of shape (N, D), (U, D) or None
        Encoder embeddings (head backend) or the fine-tuned model's pooled states. The
        pool's may arrive as rows of the embedding cache not read yet; ``score`` hands a
        strategy that reads them (any but ``scoring.NO_EMBEDDINGS``) an array.
    posterior_probs, posterior_probs_unlabeled : ndarray of shape (S, N, K), (S, U, K) or None
        Posterior samples for BALD: MC-dropout passes (fine-tune) or the fold models (head).
    batch_size : how many picks the round asks for (batch strategies order this many greedily).
    model_signal : whether the model beats chance out of sample (:mod:`crowdloop.tasks.signal`);
        None when not measured (nothing trained yet).
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
    model_signal: bool | None = None

    @property
    def n_labeled(self) -> int:
        return len(self.labels_multiannotator)

    def require(self, strategy: str, *names: str) -> None:
        """Fail with one sentence (a DataError: the command prints it as one line) when a field
        ``strategy`` needs is None: a round with nothing labeled has no model, so no probabilities."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            why = ("nothing is labeled yet" if self.n_labeled == 0 else
                   "the labels so far are of one class" if self.pred_probs is None else "")
            what = (f"{why}, so no model is trained; set score.cold_start: true for the next batch, or a strategy "
                    f"that needs no model ({', '.join(MODEL_FREE)})" if why
                    else "train a model first or choose another strategy")
            raise DataError(f"score.strategy: the {strategy} strategy needs {', '.join(missing)}, which this round "
                            f"does not have; {what}.")

    def counts(self) -> np.ndarray:
        """Labels per class of each labeled example, shape (N, K)."""
        return vote_counts(self.labels_multiannotator.to_numpy(dtype=float), self.n_classes)


Strategy = Callable[..., tuple[np.ndarray, np.ndarray]]


def random_scores(n_labeled: int, n_unlabeled: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform [0, 1) scores from ``default_rng(seed)``: shapes (n_labeled,), (n_unlabeled,)."""
    if n_labeled < 0 or n_unlabeled < 0:
        raise ValueError(
            f"example counts must be >= 0, got {n_labeled} labeled and {n_unlabeled} unlabeled."
        )
    rng = np.random.default_rng(seed)
    return rng.random(n_labeled), rng.random(n_unlabeled)


def activelab(inputs: ScoreInputs, *, seed: int):
    """cleanlab ActiveLab on the out-of-sample probabilities."""
    inputs.require("activelab", "pred_probs", "pred_probs_unlabeled")
    return _activelab(inputs.labels_multiannotator, inputs.pred_probs, inputs.pred_probs_unlabeled, seed=seed)


def activelab_ensemble(inputs: ScoreInputs, *, seed: int):
    """cleanlab ActiveLab over the fold models as an ensemble (labeled rows: see ``ScoreInputs``)."""
    inputs.require("activelab_ensemble", "fold_pred_probs", "fold_pred_probs_unlabeled")
    return _activelab_ensemble(inputs.labels_multiannotator, inputs.fold_pred_probs,
                               inputs.fold_pred_probs_unlabeled, seed=seed)


def random(inputs: ScoreInputs, *, seed: int):
    """Uniform random order over both pools."""
    return random_scores(inputs.n_labeled, inputs.n_unlabeled, seed=seed)


def good_random(inputs: ScoreInputs, *, seed: int):
    """Random among the least-annotated, unlabeled first (ActiveLab paper's stronger baseline)."""
    s_l, s_u = random_scores(inputs.n_labeled, inputs.n_unlabeled, seed=seed)
    return s_l + inputs.counts().sum(axis=1), s_u


def agreement(inputs: ScoreInputs, *, seed: int):
    """Model-free: random's draws, the labeled examples' smallest ones moved to those whose vote is tied.

    Every example gets a uniform draw, the same numbers as ``random`` with this seed. The
    labeled examples' draws are then dealt out again: the smallest to the examples whose
    majority is tied (two or more classes share the most votes), in the order of their own
    draws, and the rest to the other labeled examples in random's order. So a batch asks for
    the same first labels and as many re-labels as ``random`` would, and its re-labels
    settle ties first: under a majority vote one more label decides a tie, while a second
    label on a lone vote does not make the vote right more often (it agrees, or it makes a
    tie that a coin decides). It never uses the model, so it cannot be misled by one that
    carries no signal (why this order: README "Which re-labels `agreement` asks for").
    """
    draws_l, draws_u = random_scores(inputs.n_labeled, inputs.n_unlabeled, seed=seed)
    counts = inputs.counts()
    tied = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    order = np.lexsort((draws_l, ~tied))  # tied examples first, each group in its draws' order
    scores_l = np.empty(inputs.n_labeled)
    scores_l[order] = np.sort(draws_l)
    return scores_l, draws_u


def _per_example(measure: Callable[[np.ndarray], np.ndarray], name: str):
    def strategy(inputs: ScoreInputs, *, seed: int):
        inputs.require(name, "pred_probs", "pred_probs_unlabeled")
        mixed = uncertainty.with_annotations(inputs.pred_probs, inputs.counts())
        return measure(mixed), measure(inputs.pred_probs_unlabeled)

    strategy.__name__ = name
    strategy.__doc__ = f"``uncertainty.{measure.__name__}`` of the probabilities (labeled: annotations mixed in)."
    return strategy


least_confidence = _per_example(uncertainty.least_confidence, "least_confidence")
margin = _per_example(uncertainty.margin, "margin")
entropy = _per_example(uncertainty.entropy, "entropy")


def qbc(inputs: ScoreInputs, *, seed: int):
    """Query-by-committee: vote entropy of the fold models' argmax votes.

    A labeled example's annotators vote alongside the fold models.
    """
    inputs.require("qbc", "fold_pred_probs", "fold_pred_probs_unlabeled")
    votes_l = np.hstack([inputs.fold_pred_probs.argmax(-1).T.astype(float),
                         inputs.labels_multiannotator.to_numpy(dtype=float)])
    votes_u = inputs.fold_pred_probs_unlabeled.argmax(-1).T.astype(float)
    return (uncertainty.vote_entropy(votes_l, inputs.n_classes),
            uncertainty.vote_entropy(votes_u, inputs.n_classes))


def bald(inputs: ScoreInputs, *, seed: int):
    """BALD: mutual information between label and model from posterior samples.

    Fine-tune backend: the samples are MC-dropout passes of the model trained on
    all labels. Head backend (a deterministic logistic regression): the fold
    models stand in as posterior samples, a bootstrap-like approximation. A
    labeled example's samples each have its annotations mixed in.
    """
    inputs.require("bald", "posterior_probs", "posterior_probs_unlabeled")
    mixed = uncertainty.with_annotations(inputs.posterior_probs, inputs.counts())
    return uncertainty.bald(mixed), uncertainty.bald(inputs.posterior_probs_unlabeled)


def coreset(inputs: ScoreInputs, *, seed: int):
    """Greedy k-center on embeddings: the unlabeled example farthest from everything covered."""
    inputs.require("coreset", "embeddings", "embeddings_unlabeled")
    order = geometry.k_center_order(inputs.embeddings_unlabeled, inputs.embeddings,
                                    n_greedy=GREEDY_FACTOR * inputs.batch_size, seed=seed)
    return _labeled_last(inputs), _rank_scores(order)


def badge(inputs: ScoreInputs, *, seed: int):
    """BADGE: k-means++ seeding on last-layer gradient embeddings.

    For a softmax head on features x the loss gradient w.r.t. the last layer,
    at the predicted label, is ``(p - onehot(argmax p)) ⊗ x`` (shape K·D): long
    when the model is unsure, pointing in different directions for different
    regions, so the seeding picks uncertain and diverse examples at once.
    """
    inputs.require("badge", "pred_probs_unlabeled", "embeddings_unlabeled")
    probs = inputs.pred_probs_unlabeled
    residual = probs - np.eye(inputs.n_classes)[probs.argmax(axis=1)]
    gradients = (residual[:, :, None] * inputs.embeddings_unlabeled[:, None, :]).reshape(len(probs), -1)
    order = geometry.kmeans_pp_order(gradients, n_greedy=GREEDY_FACTOR * inputs.batch_size, seed=seed)
    return _labeled_last(inputs), _rank_scores(order)


def cold_start(inputs: ScoreInputs, *, seed: int):
    """Cluster the unlabeled embeddings into ``batch_size`` groups; the example nearest each centroid first."""
    inputs.require("cold_start", "embeddings_unlabeled")
    order = geometry.centroid_order(inputs.embeddings_unlabeled, n_clusters=inputs.batch_size, seed=seed)
    return _labeled_last(inputs), _rank_scores(order)


def _rank_scores(order: np.ndarray) -> np.ndarray:
    """Score rank / U for a permutation ``order`` (U,): the first index gets 0."""
    scores = np.empty(len(order))
    scores[order] = np.arange(len(order)) / max(len(order), 1)
    return scores


def _labeled_last(inputs: ScoreInputs) -> np.ndarray:
    """Labeled scores in [1, 2]: after every unlabeled example, least confident first."""
    if inputs.n_labeled == 0:
        return np.zeros(0)
    if inputs.pred_probs is None:
        counts = inputs.counts().sum(axis=1)
        return 1.0 + counts / counts.max()
    mixed = uncertainty.with_annotations(inputs.pred_probs, inputs.counts())
    return 1.0 + uncertainty.least_confidence(mixed)


BUILTIN: dict[str, Strategy] = {
    "activelab": activelab,
    "activelab_ensemble": activelab_ensemble,
    "random": random,
    "good_random": good_random,
    "agreement": agreement,
    "least_confidence": least_confidence,
    "margin": margin,
    "entropy": entropy,
    "coreset": coreset,
    "badge": badge,
    "qbc": qbc,
    "bald": bald,
    "cold_start": cold_start,
}
# Strategies that need no trained model (embeddings at most), so they run before any model exists.
MODEL_FREE = ("random", "good_random", "agreement", "cold_start")
