"""The model's signal: balanced accuracy against chance and log-loss against the class prior."""

from __future__ import annotations

import numpy as np
import pytest

from crowdloop.tasks import signal
from crowdloop.tasks.predict import out_of_sample


class _Logistic:
    """A tiny backend for out_of_sample: scikit-learn's logistic regression on dense features."""

    name = "toy"

    def fit(self, X, y, *, n_classes, seed, sample_weight=None):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=500).fit(X, y)

    def predict_proba(self, fitted, X):
        probs = np.full((len(X), 2), 1e-6)
        probs[:, fitted.classes_] = fitted.predict_proba(X)
        return probs / probs.sum(axis=1, keepdims=True)


def _oos(X, y, seed=0):
    out = out_of_sample(_Logistic(), X, y, n_classes=2, folds=3, seed=seed)
    return signal.model_signal(out.pred_probs, y, out.folds)


@pytest.mark.parametrize("seed", range(5))
def test_a_model_at_chance_reports_no_signal(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 5))
    y = rng.integers(2, size=120)  # labels independent of the features
    measured = _oos(X, y, seed)
    assert measured["signal"] == 0
    assert abs(measured["oos_balanced_accuracy"] - 0.5) < 3 * measured["oos_balanced_accuracy_se"]
    assert measured["log_loss_gain"] < 2 * measured["log_loss_gain_se"]


@pytest.mark.parametrize("seed", range(5))
def test_a_separable_case_reports_signal(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(2, size=120)
    X = rng.normal(size=(120, 5)) + 1.5 * y[:, None]
    measured = _oos(X, y, seed)
    assert measured["signal"] == 1 and measured["signal_z"] > signal.Z_SIGNAL
    assert measured["oos_balanced_accuracy"] > 0.8 and measured["log_loss_gain"] > 0


def test_always_answering_the_majority_class_is_at_chance_on_imbalanced_data():
    labels = np.array([0] * 90 + [1] * 10)
    majority = np.tile([0.9, 0.1], (100, 1))  # 90% accurate, and no signal at all
    measured = signal.model_signal(majority, labels, np.arange(100) % 3)
    assert measured["oos_balanced_accuracy"] == 0.5 and measured["signal"] == 0
    assert "NO SIGNAL" in signal.describe(measured)


def test_the_prior_baseline_uses_the_other_folds_and_nothing_is_measured_for_one_class():
    labels = np.array([0, 0, 1, 1, 0, 1])
    folds = np.array([0, 0, 0, 1, 1, 1])
    prior = signal._held_out_priors(labels, folds, 2)
    # fold 0 is scored with fold 1's shares (one 0, two 1s; add-one: 2/5, 3/5), and back
    np.testing.assert_allclose(prior, [2 / 5, 2 / 5, 3 / 5, 2 / 5, 3 / 5, 2 / 5])
    assert signal.model_signal(np.full((3, 2), 0.5), np.zeros(3, dtype=int), np.arange(3)) == {}
