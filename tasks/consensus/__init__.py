"""The consensus step: consensus labels, their quality and annotator quality.

``consensus.method`` in params.yaml picks the method. CROWDLAB needs the last round's
model, so its round 0 uses the majority vote; every other method uses the labels alone
and runs from round 0. What ``consensus_quality`` means (the number tracked round to round):

* ``majority`` (:mod:`.majority`): the share of the example's annotators who chose
  the consensus label. A single label counts as 1.0, so it is an optimistic,
  model-free proxy.
* ``crowdlab`` (:mod:`.crowdlab`): CROWDLAB's estimated probability that the
  consensus label is correct, an absolute probability in [0, 1], so its mean is
  comparable across rounds that use ``crowdlab``.
* crowd-kit's methods (:mod:`.crowdkit`: ``dawid_skene``, ``one_coin_dawid_skene``,
  ``glad``, ``mace``, ``wawa``, ``zero_based_skill``): the method's posterior
  probability of the consensus label; their annotator quality is the estimated
  probability that the annotator's label is right.

``Consensus.method`` says which one a round used. Labels here are class indices;
:mod:`crowdloop.tasks.round_data` maps the class names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks.config_checks import CONSENSUS_METHODS
from crowdloop.tasks.consensus import crowdkit, majority
from crowdloop.tasks.consensus.base import Consensus, to_wide

__all__ = ["Consensus", "consensus", "to_wide"]

log = logging.getLogger("crowdloop")


def consensus(
    labels_multiannotator: pd.DataFrame,
    pred_probs: np.ndarray | None,
    *,
    method: str,
    classes: Sequence[str],
    calibrate_probs: bool,
    crowdlab_label: str,
    seed: int,
) -> Consensus:
    """The consensus of ``method`` (one of ``CONSENSUS_METHODS``): majority vote, CROWDLAB
    (majority vote while ``pred_probs`` is None, i.e. round 0) or a crowd-kit method.

    ``labels_multiannotator`` : DataFrame of shape (N, M), class indices (see ``to_wide``).
    ``pred_probs`` : ndarray of shape (N, K) or None, columns in the order of ``classes``;
    only CROWDLAB reads it. ``crowdlab_label`` : how CROWDLAB picks the label, see
    :func:`.crowdlab.crowdlab` (``label``).

    If a method other than the majority vote collapses every consensus label into one
    class while the annotators used several (a model that predicts one class, a crowd
    model fitted on a handful of labels), the majority vote is returned instead: a
    one-class consensus could not train the next model.
    """
    if method not in CONSENSUS_METHODS:
        known = ", ".join(CONSENSUS_METHODS)
        raise ValueError(f"unknown consensus method {method!r}; choose one of {known}.")
    # No labeled example yet (a cold start): every method's consensus is the empty one.
    empty = labels_multiannotator.shape[0] == 0
    if method == "majority" or (method == "crowdlab" and pred_probs is None) or empty:
        return majority.majority(labels_multiannotator, classes=classes, seed=seed)
    if method in crowdkit.METHODS:
        result = crowdkit.crowdkit_consensus(labels_multiannotator, method=method, classes=classes, seed=seed)
    else:
        # imported here: cleanlab is slow to import, and `crowdloop status` reads consensus.base only
        from crowdloop.tasks.consensus import crowdlab

        if np.ndim(pred_probs) != 2 or np.shape(pred_probs)[1] != len(classes):
            raise ValueError(
                f"pred_probs has shape {np.shape(pred_probs)} but there are {len(classes)} classes; "
                "predict one probability column per class."
            )
        result = crowdlab.crowdlab(labels_multiannotator, pred_probs, classes=classes,
                                   calibrate_probs=calibrate_probs, label=crowdlab_label, seed=seed)
    given = pd.unique(labels_multiannotator.to_numpy().ravel())
    if result.examples["consensus_label"].nunique() < 2 <= len(given[~pd.isna(given)]):
        log.warning("%s put all %d examples in one class although the annotators used several; this round's "
                    "consensus is the majority vote", method, len(result.examples))
        return majority.majority(labels_multiannotator, classes=classes, seed=seed)
    if method in crowdkit.METHODS:
        _warn_reversed(labels_multiannotator, result, method)
    return result


def reversed_single_labels(labels_multiannotator: pd.DataFrame, consensus_label: np.ndarray) -> tuple[int, int]:
    """Of the examples in ``labels_multiannotator`` (N, M) that hold exactly one label, how many have a
    ``consensus_label`` (N,) other than that label, and how many there are."""
    values = labels_multiannotator.to_numpy(dtype=float)
    single = (~np.isnan(values)).sum(axis=1) == 1
    only = np.nanmax(values[single], axis=1) if single.any() else np.empty(0)
    return int((only != np.asarray(consensus_label)[single]).sum()), int(single.sum())


def _warn_reversed(labels_multiannotator: pd.DataFrame, result: Consensus, method: str) -> None:
    """Warn when a crowd model turned lone labels into another class: it judged their annotators
    worse than chance, which on a few shared examples is more often noise than an annotator who
    answers wrong on purpose (README "Consensus methods": RTE at 1-3 labels an example)."""
    flipped, single = reversed_single_labels(labels_multiannotator, result.examples["consensus_label"].to_numpy())
    if flipped:
        log.warning("%s reversed the only label of %d of the %d examples labeled once: it judges their annotators "
                    "worse than chance, more often noise than fact with few examples shared; the majority vote keeps "
                    "lone labels and mace rarely reverses one (README: Consensus methods)", method, flipped, single)
