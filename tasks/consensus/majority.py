"""Majority vote: the consensus of round 0 and of ``consensus.method: majority``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks.consensus.base import (Consensus, annotators_frame, check_label_matrix, examples_frame,
                                            tie_noise, worst_class)


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
    quality is their agreement with the consensus on examples others labeled too.
    """
    n_classes = len(classes)
    labels = check_label_matrix(labels_multiannotator, n_classes=n_classes)
    values = labels.to_numpy()
    counts = np.stack([(values == k).sum(axis=1) for k in range(n_classes)], axis=1).astype(float)
    # A draw in [0, 0.5) reorders only classes with equal counts: a seeded,
    # unbiased tie-break (not always the first class).
    noise = 0.5 * tie_noise(len(counts), n_classes, seed=seed, classes=classes)
    label = np.argmax(counts + noise, axis=1)
    num = counts.sum(axis=1)
    agreement = counts[np.arange(len(label)), label] / np.maximum(num, 1)
    examples = examples_frame(labels.index, label, agreement, agreement, num)

    quality, agreement_rate, worst = [], [], []
    for column in values.T:
        mine = ~np.isnan(column)
        agrees = column == label
        # Agreement on shared examples is what tells annotators apart; someone
        # who only labeled single-label examples trivially agrees on those.
        shared = mine & (num >= 2)
        quality.append(agrees[shared].mean() if shared.any() else agrees[mine].mean())
        agreement_rate.append(agrees[mine].mean())
        worst.append(worst_class(column[mine].astype(int), label[mine]))
    annotators = annotators_frame(
        labels.columns, quality=quality, agreement=agreement_rate,
        num=(~np.isnan(values)).sum(axis=0), worst=worst,
    )
    return Consensus(examples, annotators, "majority")
