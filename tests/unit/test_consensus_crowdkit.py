"""crowd-kit's methods wired into crowdloop's consensus, on small hand-checked label matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.config_checks import CONSENSUS_METHODS
from crowdloop.tasks.consensus import consensus
from crowdloop.tasks.consensus.base import ANNOTATOR_STATS, EXAMPLE_STATS
from crowdloop.tasks.consensus.crowdkit import METHODS, crowdkit_consensus

NAN = np.nan
CROWDKIT = sorted(METHODS)


def _wide(columns: dict, index) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index(index, name="example_id"), dtype=float)


def _crowd(n_items=40, *, seed=0, good=("g1", "g2", "g3"), spammer="s1", n_classes=2) -> tuple[pd.DataFrame, np.ndarray]:
    """Three annotators right 90% of the time and one who always says class 0; every item labeled by all."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(n_classes, size=n_items)
    columns = {}
    for name in good:
        wrong = rng.random(n_items) < 0.1
        columns[name] = np.where(wrong, (truth + 1) % n_classes, truth)
    columns[spammer] = np.zeros(n_items)
    return _wide(columns, [f"e{i:02d}" for i in range(n_items)]), truth


def run(method, labels, classes=("c0", "c1"), seed=0):
    return consensus(labels, None, method=method, classes=list(classes), calibrate_probs=False,
                     crowdlab_label="majority_vote", seed=seed)


def test_the_method_names_params_yaml_accepts_are_the_ones_that_exist():
    assert set(CONSENSUS_METHODS) == {"majority", "crowdlab", *METHODS}


def test_an_unknown_method_name_is_a_clear_error():
    labels, _ = _crowd()
    with pytest.raises(ValueError, match="unknown consensus method 'dawid_skeen'; choose one of crowdlab, majority"):
        run("dawid_skeen", labels)
    with pytest.raises(ValueError, match="unknown crowd-kit method 'majority'"):
        crowdkit_consensus(labels, method="majority", classes=["c0", "c1"], seed=0)


@pytest.mark.parametrize("method", CROWDKIT)
def test_each_method_recovers_the_truth_and_ranks_the_spammer_last(method):
    labels, truth = _crowd()
    result = run(method, labels)
    assert result.method == method
    assert list(result.examples.columns) == list(EXAMPLE_STATS)
    assert list(result.annotators.columns) == list(ANNOTATOR_STATS)
    assert list(result.examples.index) == list(labels.index)
    assert (result.examples["consensus_label"].to_numpy() == truth).mean() >= 0.95
    quality = result.annotators.set_index("annotator_id")["annotator_quality"]
    assert quality.between(0, 1).all()
    assert quality.idxmin() == "s1"
    # the 90% annotators, on the "probability of being right" scale (GLAD's prior shrinks it most)
    assert quality.drop("s1").min() > max(0.65, quality["s1"] + 0.15)
    # consensus quality: the posterior probability of the consensus label
    assert result.examples["consensus_quality"].between(0.5, 1).all()
    # label quality: the same posterior read at each given label; the spammer's wrong labels score low
    lq = result.label_quality
    assert lq.shape == labels.shape and list(lq.columns) == list(labels.columns)
    spammer_wrong = (labels["s1"].to_numpy() != truth)
    assert lq["s1"].to_numpy()[spammer_wrong].mean() < 0.5 < lq["g1"].mean()


@pytest.mark.parametrize("method", CROWDKIT)
def test_a_class_nobody_chose_joins_by_name_and_is_never_the_consensus(method):
    labels, truth = _crowd()
    # class indices 0 and 2 used, 1 ("b") never chosen; names out of alphabetical order
    shifted = labels * 2
    result = run(method, shifted, classes=("z", "b", "a"))
    assert set(result.examples["consensus_label"]) <= {0, 2}
    assert (result.examples["consensus_label"].to_numpy() == truth * 2).mean() >= 0.95
    assert np.isfinite(result.label_quality.to_numpy()[~np.isnan(shifted.to_numpy())]).all()


@pytest.mark.parametrize("method", CROWDKIT)
def test_class_order_in_params_changes_no_result(method):
    labels, _ = _crowd(n_classes=3)
    forward = run(method, labels, classes=("a", "b", "c"))
    # the same data with classes listed in another order: index k of one is the other's 2-k
    backward = run(method, 2 - labels, classes=("c", "b", "a"))
    names_forward = np.array(["a", "b", "c"])[forward.examples["consensus_label"]]
    names_backward = np.array(["c", "b", "a"])[backward.examples["consensus_label"]]
    assert (names_forward == names_backward).all()
    np.testing.assert_allclose(forward.annotators["annotator_quality"], backward.annotators["annotator_quality"],
                               atol=1e-6)


@pytest.mark.parametrize("method", CROWDKIT)
def test_an_annotator_with_one_label_and_single_labeled_examples(method):
    labels = _wide({"a1": [0, 1, 0, 1, NAN], "a2": [0, 1, 0, 1, NAN], "a3": [NAN, NAN, NAN, NAN, 1]},
                   ["e1", "e2", "e3", "e4", "e5"])
    result = run(method, labels)
    assert result.examples["consensus_label"].tolist()[:4] == [0, 1, 0, 1]
    assert result.examples.loc["e5", "consensus_label"] == 1  # the lone label is the only evidence
    assert result.examples.loc["e5", "num_annotations"] == 1
    row = result.annotators.set_index("annotator_id").loc["a3"]
    assert row["num_examples_labeled"] == 1 and 0 <= row["annotator_quality"] <= 1


@pytest.mark.parametrize("method", CROWDKIT)
def test_an_exact_tie_is_broken_by_class_name_not_by_column(method):
    # two annotators who never agree: every example is a 1-1 tie, and both look alike
    labels = _wide({"a1": [0, 1, 0, 1], "a2": [1, 0, 1, 0]}, ["e1", "e2", "e3", "e4"])
    first = run(method, labels, classes=("x", "y"))
    swapped = run(method, 1 - labels, classes=("y", "x"))
    names_first = np.array(["x", "y"])[first.examples["consensus_label"]]
    names_swapped = np.array(["y", "x"])[swapped.examples["consensus_label"]]
    assert (names_first == names_swapped).all()
    assert result_is_deterministic(method, labels)


def result_is_deterministic(method, labels) -> bool:
    one, two = run(method, labels, seed=3), run(method, labels, seed=3)
    return one.examples.equals(two.examples) and one.annotators.equals(two.annotators)


def test_row_order_of_the_labels_changes_no_result_for_mace():
    # crowd-kit 1.4.2's MACE depended on which worker and label appear first; the wrapper fixes that order
    labels, _ = _crowd(n_classes=3, seed=4)
    shuffled = labels.iloc[::-1][["s1", "g3", "g1", "g2"]]
    one = run("mace", labels, classes=("a", "b", "c")).examples
    two = run("mace", shuffled, classes=("a", "b", "c")).examples.loc[one.index]
    np.testing.assert_allclose(one["consensus_quality"], two["consensus_quality"], atol=1e-9)
    assert one["consensus_label"].equals(two["consensus_label"])


def test_dawid_skene_quality_is_the_prior_weighted_diagonal_of_its_confusion_matrix():
    # a1 is always right, a2 always says class 0: with the truth half 0, half 1, a2 is right half the time
    labels = _wide({"a1": [0, 1] * 10, "a2": [0, 0] * 10, "a3": [0, 1] * 10}, [f"e{i}" for i in range(20)])
    quality = run("dawid_skene", labels).annotators.set_index("annotator_id")["annotator_quality"]
    np.testing.assert_allclose(quality[["a1", "a3"]], 1.0, atol=1e-3)
    np.testing.assert_allclose(quality["a2"], 0.5, atol=1e-3)


def test_crowd_methods_run_without_a_model_from_round_zero():
    labels, _ = _crowd()
    assert run("dawid_skene", labels).method == "dawid_skene"
    assert run("crowdlab", labels).method == "majority"  # CROWDLAB needs the model: majority in round 0


def _inverter() -> pd.DataFrame:
    """a and b agree on e0-e5; x says the opposite on every one of them, then alone labels e6-e9."""
    agreed = [0, 1, 0, 1, 0, 1]
    return _wide({"a": agreed + [NAN] * 4, "b": agreed + [NAN] * 4, "x": [1 - v for v in agreed] + [1, 1, 1, 0]},
                 [f"e{i}" for i in range(10)])


@pytest.mark.parametrize("method", ["one_coin_dawid_skene", "dawid_skene"])
def test_a_crowd_model_that_reverses_lone_labels_says_so(method, caplog):
    labels = _inverter()
    with caplog.at_level("WARNING", logger="crowdloop"):
        result = run(method, labels)
    assert result.examples["consensus_label"].tolist()[6:] == [0, 0, 0, 1]  # x's lone labels, reversed
    assert f"{method} reversed the only label of 4 of the 4 examples labeled once" in caplog.text


@pytest.mark.parametrize("method", ["majority", "mace", "wawa", "zero_based_skill"])
def test_a_method_that_keeps_lone_labels_warns_of_nothing(method, caplog):
    with caplog.at_level("WARNING", logger="crowdloop"):
        result = run(method, _inverter())
    assert result.examples["consensus_label"].tolist()[6:] == [1, 1, 1, 0]
    assert "reversed" not in caplog.text
