"""Uncertainty measures on predicted probabilities, as scores where lower = ask first.

Pure NumPy. Every function maps probabilities to a score in [0, 1]:

* ``least_confidence``: max_k p_k (low confidence -> low score);
* ``margin``: p_(1) - p_(2), the gap between the two most likely classes;
* ``entropy``: 1 - H(p) / log K;
* ``vote_entropy``: 1 - H(votes) / log min(voters, K), over a committee's argmax votes;
* ``bald``: 1 - I(y; θ) / log K, the mutual information between the label and
  the model, estimated from posterior samples (fold models or MC-dropout passes).

How a labeled example is scored (re-labeling)
------------------------------------------------
A labeled example already has answers, so its uncertainty is not the model's
alone: :func:`with_annotations` mixes its probabilities with its labels as
pseudo-counts, ``p' = (p + c) / (1 + n)`` where ``c`` (K,) counts its labels per
class and ``n`` is how many it has; the model counts as one annotator. An
example whose annotators agree becomes confident as labels arrive (its score
rises, it is asked later); one whose annotators disagree stays uncertain. For
the committee (``vote_entropy``) the annotators' labels join the committee's
votes the same way.
"""

from __future__ import annotations

import numpy as np

_TINY = 1e-12


def with_annotations(probs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``(p + c) / (1 + n)``: probabilities (..., N, K) mixed with label counts (N, K)."""
    return (probs + counts) / (1.0 + counts.sum(axis=1, keepdims=True))


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """Score (N,) = the top probability of each row of ``probs`` (N, K)."""
    return np.asarray(probs, dtype=float).max(axis=-1)


def margin(probs: np.ndarray) -> np.ndarray:
    """Score (N,) = top minus second probability of each row of ``probs`` (N, K)."""
    top2 = np.sort(np.asarray(probs, dtype=float), axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def entropy(probs: np.ndarray) -> np.ndarray:
    """Score (N,) = 1 - normalised Shannon entropy of each row of ``probs`` (N, K)."""
    probs = np.asarray(probs, dtype=float)
    return 1.0 - _entropy(probs) / np.log(probs.shape[-1])


def vote_entropy(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Score (N,) = 1 - normalised entropy of a committee's votes.

    Parameters
    ----------
    votes : ndarray of shape (N, C) of float
        Each row holds the class index each committee member voted for; NaN =
        member did not vote (an annotator who did not label the row).
    n_classes : K

    A row on which fewer than two members voted scores 1 (nothing to disagree).
    """
    votes = np.asarray(votes, dtype=float)
    shares = np.zeros((len(votes), n_classes))
    rows, cols = np.nonzero(~np.isnan(votes))
    np.add.at(shares, (rows, votes[rows, cols].astype(int)), 1.0)
    voters = shares.sum(axis=1)
    shares = shares / np.maximum(voters, 1)[:, None]
    scale = np.log(np.clip(np.minimum(voters, n_classes), 2, None))
    score = 1.0 - _entropy(shares) / scale
    return np.where(voters >= 2, score, 1.0)


def bald(samples: np.ndarray) -> np.ndarray:
    """Score (N,) = 1 - mutual information / log K from posterior samples (S, N, K).

    I(y; θ) = H(mean_s p_s) - mean_s H(p_s): high when the samples are each
    confident but disagree (epistemic uncertainty), zero when they all agree.
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 3 or len(samples) < 2:
        raise ValueError(f"bald needs posterior samples of shape (S>=2, N, K); got {samples.shape}.")
    information = _entropy(samples.mean(axis=0)) - _entropy(samples).mean(axis=0)
    return 1.0 - np.clip(information, 0.0, None) / np.log(samples.shape[-1])


def _entropy(probs: np.ndarray) -> np.ndarray:
    return -(probs * np.log(np.clip(probs, _TINY, None))).sum(axis=-1)
