"""Consensus: wide matrix, majority vote, CROWDLAB and the dispatcher, on hand-checked data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.consensus import consensus, to_wide
from crowdloop.tasks.consensus.majority import majority
from crowdloop.tasks.consensus.base import ANNOTATOR_STATS, EXAMPLE_STATS, break_exact_ties
from crowdloop.tasks.consensus.crowdlab import crowdlab as _crowdlab

NAN = np.nan


def names(k: int) -> list[str]:
    """K class names that sort in index order (c0 < c1 < ... for K <= 10)."""
    return [f"c{i}" for i in range(k)]


def crowdlab(labels, probs, *, seed=0, calibrate_probs=True, label="best_quality"):
    return _crowdlab(labels, probs, classes=names(np.shape(probs)[1]), calibrate_probs=calibrate_probs, label=label,
                     seed=seed)


def _long(rows):
    return pd.DataFrame(rows, columns=["example_id", "annotator_id", "label"])


def _wide(columns: dict, index) -> pd.DataFrame:
    return pd.DataFrame(columns, index=pd.Index(index, name="example_id"), dtype=float)


# ---------------------------------------------------------------- to_wide

def test_to_wide_orders_rows_and_columns_and_leaves_nan_where_unlabeled():
    annotations = _long([("e2", "zoe", 1), ("e1", "amy", 0), ("e2", "amy", 2), ("e3", "bob", 3)])
    wide = to_wide(annotations, example_ids=["e3", "e1", "e2", "e4"])
    assert list(wide.index) == ["e3", "e1", "e2", "e4"]
    assert list(wide.columns) == ["amy", "bob", "zoe"]
    expected = np.array([[NAN, 3, NAN], [0, NAN, NAN], [2, NAN, 1], [NAN, NAN, NAN]])
    np.testing.assert_array_equal(wide.to_numpy(), expected)
    assert wide.dtypes.eq(float).all()


def test_to_wide_rejects_unknown_example():
    with pytest.raises(ValueError, match="'e9' is not among example_ids"):
        to_wide(_long([("e1", "amy", 0), ("e9", "amy", 1)]), example_ids=["e1"])


def test_to_wide_rejects_the_same_annotator_twice_on_one_example():
    with pytest.raises(ValueError, match="'amy' labeled example 'e1' more than once"):
        to_wide(_long([("e1", "amy", 0), ("e1", "amy", 1)]), example_ids=["e1"])


def test_to_wide_rejects_class_names():
    with pytest.raises(ValueError, match="not a class index"):
        to_wide(_long([("e1", "amy", "billing")]), example_ids=["e1"])


# ---------------------------------------------------------------- majority

FOUR_BY_THREE = _wide(
    {"a1": [0, 1, 2, NAN], "a2": [0, 1, NAN, 3], "a3": [0, 2, 2, NAN]},
    ["e1", "e2", "e3", "e4"],
)


def test_majority_on_four_examples_by_three_annotators():
    result = majority(FOUR_BY_THREE, classes=names(4), seed=0)
    assert result.method == "majority"
    examples = result.examples
    assert list(examples.columns) == list(EXAMPLE_STATS)
    assert list(examples.index) == ["e1", "e2", "e3", "e4"]
    assert examples["consensus_label"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(examples["annotator_agreement"], [1, 2 / 3, 1, 1])
    np.testing.assert_allclose(examples["consensus_quality"], [1, 2 / 3, 1, 1])
    assert examples["num_annotations"].tolist() == [3, 3, 2, 1]

    annotators = result.annotators
    assert list(annotators.columns) == list(ANNOTATOR_STATS)
    assert annotators["annotator_id"].tolist() == ["a1", "a2", "a3"]
    np.testing.assert_allclose(annotators["annotator_quality"], [1, 1, 2 / 3])
    np.testing.assert_allclose(annotators["agreement_with_consensus"], [1, 1, 2 / 3])
    assert annotators["num_examples_labeled"].tolist() == [3, 3, 3]
    # a3 is right on its 0 and half right on its 2s; a1, a2 never disagree
    assert annotators["worst_class"].tolist() == [-1, -1, 2]


def test_majority_annotator_quality_counts_only_shared_examples_when_there_are_some():
    labels = _wide({"a": [0, 0, 1], "b": [1, NAN, NAN], "c": [1, NAN, NAN]}, ["e1", "e2", "e3"])
    annotators = majority(labels, classes=names(2), seed=0).annotators.set_index("annotator_id")
    # a: wrong on the one shared example, trivially right on its two single labels
    assert annotators.loc["a", "annotator_quality"] == 0.0
    assert annotators.loc["a", "agreement_with_consensus"] == pytest.approx(2 / 3)
    labels_alone = _wide({"a": [0, NAN], "b": [NAN, 1]}, ["e1", "e2"])
    alone = majority(labels_alone, classes=names(2), seed=0).annotators
    assert alone["annotator_quality"].tolist() == [1.0, 1.0]


def test_majority_breaks_ties_with_the_seed_not_toward_the_lowest_class():
    tied = _wide({"a": [0.0] * 20, "b": [1.0] * 20}, [f"e{i:02d}" for i in range(20)])
    first = majority(tied, classes=names(2), seed=3).examples["consensus_label"]
    again = majority(tied, classes=names(2), seed=3).examples["consensus_label"]
    other = majority(tied, classes=names(2), seed=4).examples["consensus_label"]
    pd.testing.assert_series_equal(first, again)
    assert set(first) == {0, 1}
    assert not first.equals(other)
    quality = majority(tied, classes=names(2), seed=3).examples["consensus_quality"]
    np.testing.assert_allclose(quality, 0.5)


def test_majority_rejects_an_unlabeled_row_and_out_of_range_labels():
    with pytest.raises(ValueError, match="example 'e2' has no label"):
        majority(_wide({"a": [0, NAN]}, ["e1", "e2"]), classes=names(2), seed=0)
    with pytest.raises(ValueError, match=r"class indices 0\.\.1"):
        majority(_wide({"a": [0, 2]}, ["e1", "e2"]), classes=names(2), seed=0)


@pytest.mark.parametrize("method", ["majority", "crowdlab", "dawid_skene", "glad", "mace", "wawa"])
def test_consensus_of_no_examples_is_empty_for_every_method(method):
    agreed = consensus(_wide({}, []), np.zeros((0, 2)), method=method, classes=names(2), calibrate_probs=False,
                       crowdlab_label="majority_vote", seed=0)
    assert len(agreed.examples) == 0


# ---------------------------------------------------------------- crowdlab

def _one_bad_annotator(n: int = 9, n_classes: int = 3):
    """good1, good2 give the true class, bad gives the next one; the model agrees with the truth."""
    truth = np.arange(n) % n_classes
    labels = _wide(
        {"bad": (truth + 1) % n_classes, "good1": truth, "good2": truth},
        [f"e{i}" for i in range(n)],
    )
    probs = np.full((n, n_classes), 0.2 / (n_classes - 1))
    probs[np.arange(n), truth] = 0.8
    return labels, probs, truth


def test_crowdlab_follows_the_good_annotators_and_ranks_the_bad_one_last():
    labels, probs, truth = _one_bad_annotator()
    result = crowdlab(labels, probs)
    assert result.method == "crowdlab"
    np.testing.assert_array_equal(result.examples["consensus_label"], truth)
    quality = result.annotators.set_index("annotator_id")["annotator_quality"]
    assert quality.idxmin() == "bad"
    assert quality["bad"] < 0.5 * min(quality["good1"], quality["good2"])
    assert result.annotators.set_index("annotator_id").loc["bad", "agreement_with_consensus"] == 0
    assert result.examples["consensus_quality"].between(0, 1).all()
    np.testing.assert_allclose(result.examples["annotator_agreement"], 2 / 3)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("label", ["best_quality", "majority_vote"])
def test_crowdlab_annotator_stats_are_cleanlabs(seed, label):
    """annotator_stats computes cleanlab's table without its per-annotator group-by: equal to what
    cleanlab's get_label_quality_multiannotator returns, worst-class ties included (few labels per
    annotator and few classes make ties common)."""
    from cleanlab.multiannotator import get_label_quality_multiannotator

    from crowdloop.tasks.consensus.crowdlab import annotator_stats

    rng = np.random.default_rng(seed)
    n, m, k = rng.integers(15, 60), rng.integers(3, 12), rng.integers(2, 5)
    truth = rng.integers(0, k, n)
    values = np.where(rng.random((n, m)) < 0.8, truth[:, None], rng.integers(0, k, (n, m))).astype(float)
    values[rng.random((n, m)) < rng.uniform(0.3, 0.8)] = np.nan
    values[np.isnan(values).all(axis=1), 0] = 0.0
    values = values[:, ~np.isnan(values).all(axis=0)]
    probs = rng.dirichlet(np.ones(k), n)
    info = get_label_quality_multiannotator(values, probs, consensus_method=label, verbose=False, return_weights=True)
    ours = annotator_stats(values, info["label_quality"], info["detailed_label_quality"].to_numpy(dtype=float),
                           model_weight=info["model_weight"], annotator_weight=info["annotator_weight"])
    theirs = info["annotator_stats"].sort_index()
    for column in ["annotator_quality", "agreement_with_consensus", "num_examples_labeled", "worst_class"]:
        np.testing.assert_array_equal(ours[column], theirs[column].to_numpy(), err_msg=column)


def test_crowdlab_handles_single_label_examples_and_one_label_annotators():
    labels, probs, truth = _one_bad_annotator()
    # e9: labeled only by good1; e10: only by "solo", who shares nothing with anyone;
    # "once" adds one label to e0.
    labels.loc["e9"] = [NAN, 0, NAN]
    labels.loc["e10"] = NAN
    labels["solo"] = NAN
    labels.loc["e10", "solo"] = 1
    labels["once"] = NAN
    labels.loc["e0", "once"] = 0
    probs = np.vstack([probs, [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = crowdlab(labels, probs)
    examples = result.examples
    assert examples.loc["e9", "consensus_label"] == 0
    assert examples.loc["e10", "consensus_label"] == 1
    assert examples.loc[["e9", "e10"], "num_annotations"].tolist() == [1, 1]
    annotators = result.annotators.set_index("annotator_id")
    assert annotators.loc[["solo", "once"], "num_examples_labeled"].tolist() == [1, 1]
    assert annotators["annotator_quality"].notna().all()
    assert annotators["annotator_quality"].idxmin() == "bad"


def test_crowdlab_accepts_a_class_nobody_chose():
    labels, probs3, truth = _one_bad_annotator(n_classes=3)
    probs = np.hstack([probs3 * 0.9, np.full((len(truth), 1), 0.1)])
    result = crowdlab(labels, probs)
    np.testing.assert_array_equal(result.examples["consensus_label"], truth)


def test_crowdlab_with_only_single_labels_uses_the_model_probability_of_the_label():
    labels = _wide({"a": [0, NAN, 2], "b": [NAN, 1, NAN]}, ["e1", "e2", "e3"])
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4]])
    result = crowdlab(labels, probs)
    assert result.examples["consensus_label"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(result.examples["consensus_quality"], [0.7, 0.6, 0.4])
    annotators = result.annotators.set_index("annotator_id")
    np.testing.assert_allclose(annotators["annotator_quality"], [0.55, 0.6])
    assert annotators["worst_class"].tolist() == [-1, -1]


def test_crowdlab_is_deterministic_when_pred_probs_tie_exactly(capsys):
    # cleanlab alone crashes here: every shared example is tied and the model is uniform.
    labels = _wide({"a": [0, 1], "b": [1, 0]}, ["e1", "e2"])
    probs = np.full((2, 2), 0.5)
    first = crowdlab(labels, probs, seed=1).examples
    pd.testing.assert_frame_equal(first, crowdlab(labels, probs, seed=1).examples)
    np.testing.assert_allclose(first["annotator_agreement"], 0.5)
    assert capsys.readouterr().out == ""


def test_break_exact_ties_changes_only_tied_rows():
    probs = np.array([[0.5, 0.5], [0.7, 0.3]])
    out = break_exact_ties(probs, seed=0)
    assert out[0, 0] != out[0, 1]
    np.testing.assert_allclose(out[0], 0.5, atol=1e-8)
    np.testing.assert_array_equal(out[1], probs[1])


def test_crowdlab_rejects_pred_probs_of_the_wrong_shape():
    labels, probs, _ = _one_bad_annotator()
    with pytest.raises(ValueError, match=r"pred_probs has shape \(8, 3\)"):
        crowdlab(labels, probs[:8])


# ---------------------------------------------------------------- dispatcher

def test_consensus_uses_majority_without_pred_probs_or_when_asked():
    labels, probs, _ = _one_bad_annotator()
    kwargs = dict(classes=names(3), calibrate_probs=True, crowdlab_label="majority_vote", seed=0)
    assert consensus(labels, None, method="crowdlab", **kwargs).method == "majority"
    assert consensus(labels, probs, method="majority", **kwargs).method == "majority"
    assert consensus(labels, probs, method="crowdlab", **kwargs).method == "crowdlab"


def test_consensus_rejects_unknown_method_and_wrong_class_count():
    labels, probs, _ = _one_bad_annotator()
    with pytest.raises(ValueError, match="choose one of crowdlab, majority"):
        consensus(labels, probs, method="vote", classes=names(3), calibrate_probs=True,
                  crowdlab_label="majority_vote", seed=0)
    with pytest.raises(ValueError, match="there are 4 classes"):
        consensus(labels, probs, method="crowdlab", classes=names(4), calibrate_probs=True,
                  crowdlab_label="majority_vote", seed=0)


def test_crowdlab_collapsing_to_one_class_falls_back_to_the_majority_vote(monkeypatch, caplog):
    from crowdloop.tasks import consensus as consensus_mod

    labels = pd.DataFrame({"a": [0.0, 1.0, 1.0, 0.0], "b": [np.nan, np.nan, 1.0, np.nan]},
                          index=["e0", "e1", "e2", "e3"])
    probs = np.tile([0.6, 0.4], (4, 1))
    honest = consensus_mod.consensus(labels, probs, method="crowdlab", classes=names(2), calibrate_probs=False,
                                    crowdlab_label="majority_vote", seed=0)
    assert honest.method == "crowdlab"

    def collapsed(*args, **kwargs):  # what RTE's one-class head model made CROWDLAB return
        result = majority(labels, classes=names(2), seed=0)
        return consensus_mod.Consensus(result.examples.assign(consensus_label=0), result.annotators, "crowdlab")

    monkeypatch.setattr(consensus_mod.crowdlab, "crowdlab", collapsed)
    result = consensus_mod.consensus(labels, probs, method="crowdlab", classes=names(2), calibrate_probs=False,
                                    crowdlab_label="majority_vote", seed=0)
    assert result.method == "majority"
    assert result.examples["consensus_label"].tolist() == [0, 1, 1, 0]
    assert "consensus is the majority vote" in caplog.text  # said, not silent


def test_crowdlab_label_majority_vote_keeps_the_annotators_and_lets_the_model_break_ties():
    truth = np.arange(20) % 2
    a, b, c = (truth.astype(float) for _ in range(3))
    a[:4], b[:4], c[:4] = 1 - truth[:4], NAN, NAN  # e0-e3: only "a" labeled them, wrongly
    a[6:11] = 1 - truth[6:11]  # ... and "a" is outvoted elsewhere: an unreliable annotator
    a[4:6], c[4:6] = NAN, 1 - truth[4:6]  # e4, e5: b and c tie
    labels = _wide({"a": a, "b": b, "c": c}, [f"e{i}" for i in range(20)])
    probs = np.column_stack([1 - truth, truth]) * 0.9 + 0.05  # a confident model that is right

    def label(how):
        result = consensus(labels, probs, method="crowdlab", classes=names(2), calibrate_probs=True,
                           crowdlab_label=how, seed=0)
        return result.examples["consensus_label"].to_numpy()

    overruled = label("best_quality")
    np.testing.assert_array_equal(overruled, truth)  # the model overrules the lone, unreliable "a"
    kept = label("majority_vote")
    np.testing.assert_array_equal(kept[:4], 1 - truth[:4])  # a lone label stands
    np.testing.assert_array_equal(kept[4:6], truth[4:6])  # ties go to the model's class
    np.testing.assert_array_equal(kept[6:], truth[6:])  # the 2-1 majorities


# ---------------------------------------------------------------- calibration

def _noisy_votes(seed=0, n=300, k=2):
    rng = np.random.default_rng(seed)
    truth = rng.integers(k, size=n)
    labels = np.full((n, 5), NAN)
    for i in range(n):
        for j in rng.choice(5, size=3, replace=False):
            labels[i, j] = truth[i] if rng.random() < 0.8 else (truth[i] + 1) % k
    right = np.where(rng.random(n) < 0.85, truth, (truth + 1) % k)
    probs = np.full((n, k), 0.4 / (k - 1))
    probs[np.arange(n), right] = 0.6  # right 85% of the time, and under-confident
    return labels, probs


def test_calibration_sharpens_an_underconfident_model_whatever_the_class_order():
    from crowdloop.tasks.consensus import calibration

    labels, probs = _noisy_votes()
    t = calibration.best_temperature(labels, probs)
    assert t < 1  # sharpen: the model is right more often than its 0.6 says
    flipped = np.where(np.isnan(labels), NAN, 1 - labels)
    assert calibration.best_temperature(flipped, probs[:, ::-1]) == t


def test_calibration_is_cleanlabs_search_where_cleanlab_counts_right():
    """Where every example holds a vote for every class, cleanlab's value_counts miscount does not
    happen, and its find_best_temp_scaler agrees with ours."""
    from cleanlab.internal.multiannotator_utils import find_best_temp_scaler

    from crowdloop.tasks.consensus import calibration

    labels, probs = _noisy_votes(seed=1)
    both = labels.copy()
    both[:, 3], both[:, 4] = 0, 1  # two more annotators: one always 0, one always 1
    assert calibration.best_temperature(both, probs) == find_best_temp_scaler(both, probs)
    assert calibration.best_temperature(labels, probs) != find_best_temp_scaler(labels, probs)  # the bug


def _sparse_votes(rng, n: int, m: int, k: int) -> np.ndarray:
    """(n, m) labels in 0..k-1, each example labeled by 1-5 of the m annotators, the rest NaN."""
    values = np.full((n, m), np.nan)
    for row in values:
        who = rng.choice(m, size=int(rng.integers(1, min(5, m) + 1)), replace=False)
        row[who] = rng.integers(0, k, size=len(who))
    return values


@pytest.mark.parametrize("seed", range(6))
def test_fast_annotator_agreement_is_cleanlabs_bit_for_bit(seed):
    """The vectorised agreement equals cleanlab 2.9.0's loop over annotator pairs exactly, including
    annotators who share no example with anyone (they get the others' mean) and a matrix where
    nobody shares anything."""
    from cleanlab import multiannotator

    from crowdloop.tasks.consensus import fast_agreement

    rng = np.random.default_rng(seed)
    values = _sparse_votes(rng, int(rng.integers(5, 120)), int(rng.integers(2, 40)), int(rng.integers(2, 5)))
    loner = np.full((3, 1), np.nan)
    loner[0, 0] = 1.0  # an annotator alone on an example of their own
    values = np.vstack([np.hstack([values, np.full((len(values), 1), np.nan)]),
                        np.hstack([np.full((3, values.shape[1]), np.nan), loner])])
    values = values[~np.isnan(values).all(axis=1)]
    num = (~np.isnan(values)).sum(axis=1)
    original = multiannotator._get_annotator_agreement_with_annotators
    assert original is not fast_agreement.annotator_agreement
    np.testing.assert_array_equal(fast_agreement.annotator_agreement(values, num, verbose=False),
                                  original(values, num, verbose=False))
    alone = np.full((4, 4), np.nan)  # nobody shares an example: NaN everywhere, as cleanlab
    np.fill_diagonal(alone, [0.0, 1.0, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(fast_agreement.annotator_agreement(alone, np.ones(4, int), verbose=False),
                                      original(alone, np.ones(4, int), verbose=False))


def test_cleanlab_gives_the_same_quality_with_the_fast_agreement_swapped_in():
    """get_label_quality_multiannotator's whole output is unchanged by the swap; the swap holds
    only inside the block (nested blocks too) and cleanlab's own function is back after it."""
    from cleanlab import multiannotator

    from crowdloop.tasks.consensus import fast_agreement

    rng = np.random.default_rng(7)
    values = _sparse_votes(rng, 80, 12, 3)
    probs = rng.dirichlet(np.ones(3), size=80)
    options = {"verbose": False, "return_weights": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = multiannotator.get_label_quality_multiannotator(values, probs, **options)
        original = multiannotator._get_annotator_agreement_with_annotators
        with fast_agreement.swapped_in():
            with fast_agreement.swapped_in():
                assert multiannotator._get_annotator_agreement_with_annotators is fast_agreement.annotator_agreement
            assert multiannotator._get_annotator_agreement_with_annotators is fast_agreement.annotator_agreement
            got = multiannotator.get_label_quality_multiannotator(values, probs, **options)
    assert multiannotator._get_annotator_agreement_with_annotators is original
    for key in ("label_quality", "detailed_label_quality", "annotator_stats"):
        pd.testing.assert_frame_equal(got[key], expected[key], check_exact=True)
    np.testing.assert_array_equal(got["annotator_weight"], expected["annotator_weight"])
    assert got["model_weight"] == expected["model_weight"]
