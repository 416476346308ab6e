"""The round's classification metrics, computed without scikit-learn, agree with scikit-learn's."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from crowdloop.tasks.metrics import classification_metrics, macro_f1


@pytest.mark.parametrize("seed", range(30))
def test_macro_f1_is_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(1, 40), rng.integers(2, 6)
    labels = rng.integers(0, k, n)
    predicted = np.where(rng.random(n) < 0.5, labels, rng.integers(0, k, n))  # some right, some wrong
    assert macro_f1(labels, predicted) == pytest.approx(f1_score(labels, predicted, average="macro", zero_division=0))


def test_a_class_only_predicted_counts_as_zero_f1():
    # class 2 is never the answer but predicted once: scikit-learn averages its F1 of 0 in
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])) == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_classification_metrics_skip_unknown_gold():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    gold = np.array([0, 1, -1, 0])  # the third is unknown; the fourth is wrong
    metrics = classification_metrics(probs, gold)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx(f1_score([0, 1, 0], [0, 1, 1], average="macro"))
    assert metrics["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
