"""Temperature scaling of the model's probabilities to the annotators, as CROWDLAB's ``calibrate_probs``
intends it, without cleanlab 2.9.0's miscount.

cleanlab's ``find_best_temp_scaler`` picks the temperature whose scaled probabilities
have the lowest soft cross-entropy against each example's empirical label distribution.
It builds that distribution with ``value_counts(labels, num_classes=K)``, which, for
float labels, places the counts from class 0 up instead of at the classes voted
(``value_counts(np.array([3.0]), num_classes=4)`` is ``[1, 0, 0, 0]``), and
``labels_multiannotator`` always holds floats (NaN marks a missing label). So the
temperature was fitted to the wrong votes, and depended on class order. This module
runs cleanlab's own search (its grid, its fine search, its scaling) on the right
distribution; CROWDLAB is then called with ``calibrate_probs=False``.
"""

from __future__ import annotations

import numpy as np

COARSE_GRID = (0.1, 0.2, 0.5, 0.8, 1, 2, 3, 5, 8)  # cleanlab's find_best_temp_scaler defaults
FINE_STEPS = 4


def empirical_distribution(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Each row's share of votes per class, shape (N, K), from labels (N, M) with NaN = no label."""
    labels = np.asarray(labels, dtype=float)
    counts = np.zeros((len(labels), n_classes))
    rows, cols = np.nonzero(~np.isnan(labels))
    np.add.at(counts, (rows, labels[rows, cols].astype(int)), 1.0)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


def best_temperature(labels: np.ndarray, pred_probs: np.ndarray) -> float:
    """The temperature (coarse grid, then a fine search around its best) minimising the mean soft
    cross-entropy between the annotators' vote shares and the scaled ``pred_probs`` (N, K)."""
    from cleanlab.internal.multiannotator_utils import _set_fine_search_range  # cleanlab imports scikit-learn
    from cleanlab.internal.numerics import softmax

    pred_probs = np.asarray(pred_probs, dtype=float)
    target = empirical_distribution(labels, pred_probs.shape[1])
    log_probs = np.log(pred_probs, where=pred_probs > 0, out=np.full(pred_probs.shape, -np.inf))

    def loss(temperature: float) -> float:
        scaled = np.clip(softmax(log_probs, temperature=temperature, axis=1, shift=False), 1e-6, None)
        return float(np.mean(-(target * np.log(scaled)).sum(axis=1) / np.log(pred_probs.shape[1])))

    coarse = [loss(t) for t in COARSE_GRID]
    fine = _set_fine_search_range(list(COARSE_GRID), FINE_STEPS, int(np.argmin(coarse)))
    return float(fine[int(np.argmin([loss(t) for t in fine]))])


def calibrate(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """``pred_probs`` (N, K) temperature-scaled to the annotators' labels (N, M)."""
    from cleanlab.internal.multiannotator_utils import temp_scale_pred_probs

    return temp_scale_pred_probs(np.asarray(pred_probs, dtype=float), best_temperature(labels, pred_probs))
