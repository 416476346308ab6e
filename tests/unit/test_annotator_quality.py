"""Agreement per round, annotators who go bad (flagged, no longer routed, in simulation too), status lines."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest

from crowdloop import status_table
from crowdloop.tasks import config, gate, store
from crowdloop.tasks.agreement import agreement_metrics, krippendorff_alpha, metric_name
from crowdloop.tasks.annotator_watch import flagged_ids, recent_quality, watch
from crowdloop.tasks.annotators import at_random, busiest, simulate_answers
from crowdloop.tasks.select import Routing, select_batch

NAN = np.nan
# krippendorff's own docstring example: 3 coders x 15 units, nominal alpha 0.691358
RELIABILITY = np.array([[NAN, NAN, NAN, NAN, NAN, 3, 4, 1, 2, 1, 1, 3, 3, NAN, 3],
                        [1, NAN, 2, 1, 3, 3, 4, 3, NAN, NAN, NAN, NAN, NAN, NAN, NAN],
                        [NAN, NAN, 2, 1, 3, 4, 4, NAN, 2, 1, 1, 3, 3, NAN, 4]])


def test_alpha_is_the_krippendorff_packages_own_example():
    values = RELIABILITY.T - 1  # units x coders, classes 0..3
    assert krippendorff_alpha(values, 4) == pytest.approx(0.691358, abs=1e-6)
    assert krippendorff_alpha(values, 4) == pytest.approx(
        krippendorff.alpha(reliability_data=RELIABILITY, level_of_measurement="nominal"))


def test_agreement_overall_and_per_class_by_hand():
    # e1 unanimous a, e2 split a/b, e3 unanimous b, e4 a single label (not counted)
    values = np.array([[0, 0, NAN], [0, 1, NAN], [1, 1, 1], [NAN, NAN, 0]])
    consensus_label = np.array([0, 0, 1, 0])
    out = agreement_metrics(values, consensus_label, classes=["a", "b"])
    assert out["multiply_labeled"] == 3
    assert out["unanimous_share"] == pytest.approx(2 / 3)
    assert out["unanimous_share.a"] == pytest.approx(1 / 2)  # e1 yes, e2 no
    assert out["unanimous_share.b"] == 1.0
    # two classes: the one-vs-rest alpha of either class is the overall alpha
    assert out["krippendorff_alpha.a"] == pytest.approx(out["krippendorff_alpha"])
    assert out["krippendorff_alpha"] < 1


def test_agreement_that_is_not_defined_is_left_out():
    single = np.array([[0, NAN], [NAN, 1]])
    assert agreement_metrics(single, np.array([0, 1]), classes=["a", "b"]) == {"multiply_labeled": 0}
    one_class = agreement_metrics(np.array([[0, 0], [0, 0]]), np.array([0, 0]), classes=["a", "b", "c"])
    assert "krippendorff_alpha" not in one_class and one_class["unanimous_share"] == 1.0
    assert "unanimous_share.b" not in one_class


def test_class_names_become_metric_names_mlflow_accepts():
    assert metric_name("unanimous_share", "billing") == "unanimous_share.billing"
    assert metric_name("krippendorff_alpha", "a+b (?)") == "krippendorff_alpha.a_b ___"


# ---------------------------------------------------------------- annotators who go bad

def _annotators(ids, quality):
    return pd.DataFrame({"annotator_id": ids, "annotator_quality": quality, "num_examples_labeled": 10})


def _label_quality(rows: dict) -> pd.DataFrame:
    return pd.DataFrame(rows, index=pd.Index([f"e{i}" for i in range(len(next(iter(rows.values()))))],
                                             name="example_id"))


def test_recent_quality_reads_each_annotators_latest_shared_labels_only():
    # "bad" was right on e0..e3 and wrong on e4..e7; the window of 4 sees only the wrong ones
    quality = _label_quality({"bad": [0.9] * 4 + [0.1] * 4 + [1.0], "good": [0.8] * 8 + [NAN]})
    order = pd.DataFrame({"example_id": [f"e{i}" for i in range(9)] * 2,
                          "annotator_id": ["bad"] * 9 + ["good"] * 9}).iloc[:-1]
    recent = recent_quality(quality, order, window=4)
    # e8 is bad's latest label but nobody else labeled it: it says nothing yet
    assert recent.loc["bad", "quality"] == pytest.approx(0.1)
    assert recent.loc["good", "quality"] == pytest.approx(0.8)
    assert recent.loc["bad", "labels"] == 4
    assert recent_quality(quality, order, window=8).loc["bad", "quality"] == pytest.approx(0.5)
    # with a model to judge lone labels (CROWDLAB), e8 counts
    assert recent_quality(quality, order, window=4, lone_labels=True).loc["bad", "quality"] == pytest.approx(0.325)


def test_watch_flags_below_min_quality_with_enough_labels_and_says_why():
    quality = _label_quality({"bad": [0.2] * 6, "new": [0.1] + [NAN] * 5, "good": [0.9] * 6})  # all shared
    order = pd.DataFrame({"example_id": [f"e{i}" for i in range(6)] * 3,
                          "annotator_id": ["bad"] * 6 + ["new"] * 6 + ["good"] * 6})
    previous = _annotators(["bad", "good"], [0.8, 0.7])
    out = watch(_annotators(["bad", "good", "new"], [0.6, 0.75, 0.5]), quality, order, previous,
                min_quality=0.5, window=20, min_labels=5).set_index("annotator_id")
    assert out.loc["bad", "flagged"] and not out.loc["good", "flagged"]
    assert not out.loc["new", "flagged"]  # one label: too little to judge
    assert "recent label quality 0.20 over their last 6 labels is below routing.min_quality 0.5" in \
        out.loc["bad", "flag_reason"]
    assert out.loc["bad", "quality_change"] == pytest.approx(-0.2)
    assert out.loc["good", "quality_change"] == pytest.approx(0.05)
    assert np.isnan(out.loc["new", "quality_change"])
    off = watch(_annotators(["bad"], [0.6]), quality, order, None, min_quality=None, window=20, min_labels=5)
    assert not off["flagged"].any() and off["recent_quality"].iloc[0] == pytest.approx(0.2)


def test_flags_read_back_from_annotators_csv_are_the_same_annotators(tmp_path):
    frame = pd.DataFrame({"annotator_id": ["a", "b"], "flagged": [True, False]})
    assert flagged_ids(frame) == {"a"}
    frame.to_csv(tmp_path / "annotators.csv", index=False)
    assert flagged_ids(pd.read_csv(tmp_path / "annotators.csv")) == {"a"}
    assert flagged_ids(pd.DataFrame({"annotator_id": ["a"]})) == frozenset()


def test_routing_never_asks_a_flagged_annotator():
    scores = pd.Series([0.1, 0.2, 0.3], index=["e1", "e2", "e3"])
    annotations = pd.DataFrame({"example_id": ["e9", "e9"], "annotator_id": ["bad", "ok"]})
    quality = pd.Series({"bad": 0.99, "ok": 0.5})
    routed = select_batch(scores, annotations, quality, batch_size=3, max_annotations_per_example=5,
                          routing=Routing(capacity=5))
    assert set(routed.picks["suggested_annotator"]) == {"bad"}  # the best fills up first
    guarded = select_batch(scores, annotations, quality, batch_size=3, max_annotations_per_example=5,
                           routing=Routing(capacity=5, excluded=frozenset({"bad"})))
    assert set(guarded.picks["suggested_annotator"]) == {"ok"}
    held = select_batch(scores, annotations, quality, batch_size=3, max_annotations_per_example=5,
                        routing=Routing(holders={"e1": {"bad"}, "e2": {"ok"}}, excluded=frozenset({"bad"})))
    assert held.picks["example_id"].tolist() == ["e2"] and held.unroutable[0] == "e1"


def test_in_simulation_a_flagged_annotator_never_answers_even_when_nobody_was_suggested():
    pool = pd.DataFrame({"example_id": ["e1", "e1"], "annotator_id": ["bad", "ok"], "label": ["x", "y"]})
    seen = pd.DataFrame({"example_id": ["e0", "e0"], "annotator_id": ["bad", "ok"]})
    batch = pd.DataFrame({"example_id": ["e1"], "suggested_annotator": [None]})
    answered = {simulate_answers(batch, pool, seen, seed=s)["annotator_id"].iloc[0] for s in range(20)}
    assert answered == {"bad", "ok"}
    guarded = {simulate_answers(batch, pool, seen, seed=s, excluded=frozenset({"bad"}))["annotator_id"].iloc[0]
               for s in range(20)}
    assert guarded == {"ok"}


def test_an_annotator_who_goes_bad_answers_uniformly_at_random():
    answers = pd.DataFrame({"example_id": [f"e{i}" for i in range(400)], "annotator_id": ["bad", "ok"] * 200,
                            "label": ["x"] * 400})
    out = at_random(answers, "bad", classes=["x", "y"], seed=0)
    assert (out.loc[out["annotator_id"] == "ok", "label"] == "x").all()
    assert 0.4 < (out.loc[out["annotator_id"] == "bad", "label"] == "y").mean() < 0.6
    assert out.equals(at_random(answers, "bad", classes=["x", "y"], seed=0))  # seeded
    # an example's random label depends on the seed and the example, not on the rest of the batch or its order
    bad = out[out["annotator_id"] == "bad"].set_index("example_id")["label"]
    alone = at_random(answers.iloc[[40, 6]], "bad", classes=["x", "y"], seed=0).set_index("example_id")["label"]
    assert alone.to_dict() == bad[["e40", "e6"]].to_dict()
    assert len({tuple(at_random(answers.iloc[:20], "bad", classes=["x", "y"], seed=s)["label"]) for s in range(5)}) > 1
    assert busiest(pd.DataFrame({"annotator_id": ["b", "a", "b", "a", "c"]})) == "a"  # tie: the smaller id


def test_status_lists_the_flagged_annotators_and_the_agreement(tmp_path):
    cfg = config.from_dict({**config.load().to_dict(), "classes": ["no", "yes"],
                            "routing": {**config.load().to_dict()["routing"], "min_quality": 0.6}})
    metrics = {"round": 3, "krippendorff_alpha": 0.41, "unanimous_share": 0.62, "multiply_labeled": 50,
               "krippendorff_alpha.no": 0.4, "unanimous_share.no": 0.7, "answered": 5, "batch_size": 5}
    table = pd.DataFrame({"annotator_id": ["a7", "b2"], "annotator_quality": [0.55, 0.9],
                          "quality_change": [-0.12, 0.01], "flagged": [True, False],
                          "flag_reason": ["recent label quality 0.41 over their last 20 labels is below "
                                          "routing.min_quality 0.6", ""]})
    status = status_table.Status(store.Campaign(tmp_path), cfg, 10, 2, 5, 9, 3, [metrics],
                                 gate.Progress(round=3, asked=5, answered=5), annotator_table=table)
    text = str(status)
    # round 3 flagged them and routed its own batch without them (plan_round): not "from round 4 on"
    assert "flagged annotators (round 3's batch asks them nothing; annotators.csv of round 3)" in text
    assert "a7: recent label quality 0.41 over their last 20 labels is below routing.min_quality 0.6 " \
           "(annotator quality 0.550, -0.120 since the round before)" in text
    assert "b2" not in text.split("flagged annotators")[1]
    assert "Krippendorff's alpha 0.41, unanimous 62% of 50 examples" in text
    assert "no 0.40 (70%), yes - (-)" in text


def test_a_flag_reason_never_reads_as_a_value_below_itself():
    quality = _label_quality({"a": [0.449] * 6, "b": [0.9] * 6})
    order = pd.DataFrame({"example_id": [f"e{i}" for i in range(6)] * 2, "annotator_id": ["a"] * 6 + ["b"] * 6})
    out = watch(_annotators(["a", "b"], [0.5, 0.9]), quality, order, None, min_quality=0.45, window=20,
                min_labels=5).set_index("annotator_id")
    # was "recent label quality 0.45 over their last 6 labels is below routing.min_quality 0.45"
    assert out.loc["a", "flag_reason"] == ("recent label quality 0.449 over their last 6 labels is below "
                                           "routing.min_quality 0.45")


def test_status_counts_one_unroutable_pick_in_the_singular(tmp_path):
    cfg = config.from_dict({**config.load().to_dict(), "classes": ["no", "yes"]})
    metrics = {"round": 2, "unroutable": 1, "answered": 5, "batch_size": 5}
    status = status_table.Status(store.Campaign(tmp_path), cfg, 10, 2, 5, 9, 2, [metrics],
                                 gate.Progress(round=2, asked=5, answered=5))
    assert "round 2: 1 pick had no eligible annotator" in str(status)  # was "1 picks"
