"""Majority vote: the consensus of round 0 and of ``consensus.method: majority``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks.consensus.base import (Consensus, agreement_stats, annotators_frame, check_label_matrix,
                                            examples_frame, given_label_quality, tie_noise, vote_counts)


def majority(labels_multiannotator: pd.DataFrame, *, classes: Sequence[str], seed: int) -> Consensus:
    """Plain majority vote; a tie goes to a seeded draw among the tied classes.

    Parameters
    ----------
    labels_multiannotator : DataFrame of shape (N, M), class indices (see ``to_wide``)
    classes : the K class names, in index order; the tie-break follows the names
        (:func:`~crowdloop.tasks.consensus.base.tie_noise`), not their order.
    seed : seeds the tie-break.

    ``consensus_quality`` and ``annotator_agreement`` are the share of the example's
    annotators who chose the consensus label (1.0 for a single label); an annotator's
    quality is their agreement with the consensus on examples others labeled too. A given
    label's quality (``Consensus.label_quality``) is the share of the example's votes for it.
    """
    n_classes = len(classes)
    labels = check_label_matrix(labels_multiannotator, n_classes=n_classes)
    values = labels.to_numpy()
    counts = vote_counts(values, n_classes)
    # A draw in [0, 0.5) reorders only classes with equal counts: a seeded,
    # unbiased tie-break (not always the first class).
    noise = 0.5 * tie_noise(len(counts), n_classes, seed=seed, classes=classes)
    label = np.argmax(counts + noise, axis=1)
    num = counts.sum(axis=1)
    agreement = counts[np.arange(len(label)), label] / np.maximum(num, 1)
    examples = examples_frame(labels.index, label, agreement, agreement, num)

    quality, agreement_rate, worst = agreement_stats(values, label)
    annotators = annotators_frame(
        labels.columns, quality=quality, agreement=agreement_rate,
        num=(~np.isnan(values)).sum(axis=0), worst=worst,
    )
    shares = counts / np.maximum(num, 1)[:, None]
    return Consensus(examples, annotators, "majority", given_label_quality(labels, shares))
