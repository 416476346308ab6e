"""Training weights from consensus quality (tasks/train.py sample_weights)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.consensus.majority import majority
from crowdloop.tasks.train import sample_weights

NAN = np.nan
LABELS = pd.DataFrame({"a1": [0, 1, 2, NAN], "a2": [0, 1, NAN, 3], "a3": [0, 2, 2, NAN]},
                      index=pd.Index(["e1", "e2", "e3", "e4"], name="example_id"), dtype=float)


def test_weights_are_the_consensus_quality_of_the_asked_examples_in_their_order():
    agreed = majority(LABELS, classes=["c0", "c1", "c2", "c3"], seed=0)
    np.testing.assert_allclose(sample_weights(agreed, ["e2", "e1", "e4"], "consensus_quality"), [2 / 3, 1, 1])


def test_no_weights_when_switched_off_or_nothing_is_labeled():
    agreed = majority(LABELS, classes=["c0", "c1", "c2", "c3"], seed=0)
    assert sample_weights(agreed, ["e1", "e2"], "none") is None
    assert sample_weights(agreed, [], "consensus_quality") is None


def test_unusable_quality_falls_back_to_equal_weights(caplog):
    agreed = majority(LABELS, classes=["c0", "c1", "c2", "c3"], seed=0)
    agreed.examples["consensus_quality"] = 0.0
    assert sample_weights(agreed, ["e1", "e2"], "consensus_quality") is None
    assert "weighting equally" in caplog.text


def test_balanced_class_weights_make_each_class_weigh_the_same():
    agreed = majority(LABELS, classes=["c0", "c1", "c2", "c3"], seed=0)
    labels = np.array([0, 0, 0, 1])
    weights = sample_weights(agreed, ["e1", "e2", "e3", "e4"], "none", labels=labels, class_weight="balanced")
    np.testing.assert_allclose(weights, [4 / 6, 4 / 6, 4 / 6, 2.0])
    assert weights[labels == 0].sum() == pytest.approx(weights[labels == 1].sum())
    both = sample_weights(agreed, ["e1", "e2", "e3", "e4"], "consensus_quality", labels=labels,
                          class_weight="balanced")
    np.testing.assert_allclose(both, [1, 2 / 3, 1, 1] * np.array([4 / 6, 4 / 6, 4 / 6, 2.0]))


def test_a_model_without_signal_does_not_take_part_in_the_next_consensus(caplog):
    import dataclasses

    from crowdloop.flows.plan import trusted_previous
    from crowdloop.tasks import config

    cfg = config.load()
    previous = pd.DataFrame({"c0": [0.9]}, index=["e1"])
    assert trusted_previous(previous, True, cfg) is previous
    assert trusted_previous(previous, None, cfg) is previous  # not measured (older rounds): as before
    with caplog.at_level("INFO", logger="crowdloop"):
        assert trusted_previous(previous, False, cfg) is None
    assert "carried no signal" in caplog.text
    off = dataclasses.replace(cfg, consensus=dataclasses.replace(cfg.consensus, require_signal=False))
    assert trusted_previous(previous, False, off) is previous


def test_the_uniform_probabilities_of_a_round_without_a_model_do_not_take_part_in_the_next_consensus(caplog):
    """A round that trained no model (labels of one class) stores uniform probabilities; CROWDLAB on
    them only lowered every annotator's quality (a06 of a demo crowd from 0.52 to 0.46), whatever
    consensus.require_signal says."""
    import dataclasses

    from crowdloop.flows.plan import trusted_previous
    from crowdloop.tasks import config

    cfg = config.load()
    off = dataclasses.replace(cfg, consensus=dataclasses.replace(cfg.consensus, require_signal=False))
    uniform = pd.DataFrame({"c0": [0.5, 0.5], "c1": [0.5, 0.5]}, index=["e1", "e2"])
    for setting in (cfg, off):
        with caplog.at_level("INFO", logger="crowdloop"):
            assert trusted_previous(uniform, None, setting) is None
    assert caplog.text.count("the last round trained no model: the consensus is the majority vote") == 2
    model = pd.DataFrame({"c0": [0.5, 0.6], "c1": [0.5, 0.4]}, index=["e1", "e2"])
    assert trusted_previous(model, None, off) is model
