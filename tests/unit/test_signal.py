"""The model's signal: balanced accuracy against chance and log-loss against the class prior."""

from __future__ import annotations

import numpy as np
import pytest

from crowdloop.tasks import signal
from crowdloop.tasks.predict import out_of_sample
from crowdloop.tasks.train import sample_weights


class _Logistic:
    """A tiny backend for out_of_sample: scikit-learn's logistic regression on dense features."""

    name = "toy"

    def fit(self, X, y, *, n_classes, seed, sample_weight=None):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=500).fit(X, y, sample_weight=sample_weight)

    def predict_proba(self, fitted, X):
        probs = np.full((len(X), 2), 1e-6)
        probs[:, fitted.classes_] = fitted.predict_proba(X)
        return probs / probs.sum(axis=1, keepdims=True)


def _oos(X, y, seed=0):
    out = out_of_sample(_Logistic(), X, y, n_classes=2, folds=3, seed=seed)
    return signal.model_signal(out.pred_probs, y, out.folds)


def _class_weighted_oos(X, y, seed):
    """The signal of models fitted with balanced class weights, as a round with them measures it."""
    weights = sample_weights(None, np.arange(len(y)), "none", labels=y, class_weight="balanced")
    out = out_of_sample(_Logistic(), X, y, n_classes=2, folds=3, seed=seed, sample_weight=weights)
    return signal.model_signal(out.pred_probs, y, out.folds, class_weighted=True)


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


def _imbalanced(seed, n=400, rare=0.1, gap=0.6):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rare).astype(int)
    return rng.normal(size=(n, 5)) + gap * y[:, None], y


@pytest.mark.parametrize("seed", range(5))
def test_a_class_weighted_model_that_ranks_the_rare_class_has_signal_in_its_ranking_only(seed):
    # Balanced class weights make the model say 'rare' far more often than the data does: its
    # probabilities lose to the prior (what ActiveLab would weigh), though it ranks the classes well.
    X, y = _imbalanced(seed)
    measured = _class_weighted_oos(X, y, seed)
    assert measured["signal_z"] > signal.Z_SIGNAL and measured["log_loss_gain"] < 0
    assert measured["signal"] == 0  # what auto and the consensus read
    assert measured["oos_log_loss_weights_undone"] < measured["prior_log_loss"] < measured["oos_log_loss"]
    assert measured["ranking_signal"] == 1
    line = signal.describe(measured)
    assert line.startswith("model signal in its ranking only") and "with the class weights undone" in line
    assert "count it as no signal" in line


@pytest.mark.parametrize("seed", range(5))
def test_a_class_weighted_model_at_chance_on_imbalanced_data_has_no_signal_of_either_kind(seed):
    X, y = _imbalanced(seed, gap=0.0)  # labels independent of the features
    measured = _class_weighted_oos(X, y, seed)
    assert measured["signal"] == 0 and measured["ranking_signal"] == 0
    assert signal.describe(measured).startswith("model NO SIGNAL")
    assert "weights undone" not in signal.describe(measured)


def test_an_unweighted_model_has_ranking_signal_exactly_when_it_has_signal():
    rng = np.random.default_rng(0)
    y = rng.integers(2, size=120)
    for X in (rng.normal(size=(120, 5)), rng.normal(size=(120, 5)) + 1.5 * y[:, None]):
        measured = _oos(X, y)
        assert measured["ranking_signal"] == measured["signal"] and "oos_log_loss_weights_undone" not in measured
    assert measured["signal"] == 1


def test_undoing_balanced_weights_gives_the_data_shares_back():
    # A weighted model with nothing to go on says 1/K for every class; undone, it is the prior itself.
    priors = np.tile([0.9, 0.1], (4, 1))
    np.testing.assert_allclose(signal.undo_class_weights(np.full((4, 2), 0.5), priors), priors)
    # odds of 3:1 for the rare class under equal weights are 3 * (0.1 / 0.9) = 1:3 for the data
    np.testing.assert_allclose(signal.undo_class_weights(np.array([[0.25, 0.75]]), priors[:1]), [[0.75, 0.25]])


def test_always_answering_the_majority_class_is_at_chance_on_imbalanced_data():
    labels = np.array([0] * 90 + [1] * 10)
    majority = np.tile([0.9, 0.1], (100, 1))  # 90% accurate, and no signal at all
    measured = signal.model_signal(majority, labels, np.arange(100) % 3)
    assert measured["oos_balanced_accuracy"] == 0.5 and measured["signal"] == 0
    assert "NO SIGNAL" in signal.describe(measured)


def test_the_prior_baseline_uses_the_other_folds_and_nothing_is_measured_for_one_class():
    labels = np.array([0, 0, 1, 1, 0, 1])
    folds = np.array([0, 0, 0, 1, 1, 1])
    priors = signal._held_out_priors(labels, folds, 2)
    # fold 0 is scored with fold 1's shares (one 0, two 1s; add-one: 2/5, 3/5), and back
    np.testing.assert_allclose(priors, [[2 / 5, 3 / 5]] * 3 + [[3 / 5, 2 / 5]] * 3)
    assert signal.model_signal(np.full((3, 2), 0.5), np.zeros(3, dtype=int), np.arange(3)) == {}


def test_was_present_reads_ranking_signal_and_older_rounds_their_signal():
    ranked = [{"signal": 0, "ranking_signal": 1}]
    assert signal.was_present(ranked) is False and signal.was_present(ranked, "ranking_signal") is True
    older = [{"signal": 0}]  # measured before ranking_signal existed
    assert signal.was_present(older, "ranking_signal") is False
    assert signal.was_present([]) is None and signal.was_present([{"signal": float("nan")}], "ranking_signal") is None
