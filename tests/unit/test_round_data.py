"""The round's data: names <-> indices, and the last round's probabilities joined by class name.

Reordering ``classes`` in params.yaml must change no consensus label: probabilities
are matched to classes by name, and ties are broken by the model or by a rule on
class names, never by position.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks import consensus, round_data
from crowdloop.tasks.consensus import majority
from crowdloop.tasks.errors import CampaignError

CLASSES = ("billing", "technical", "shipping")
EXAMPLES = pd.DataFrame({"example_id": ["e1", "e2", "e3", "e4", "t1"], "text": list("abcde"),
                         "split": ["pool"] * 4 + ["test"], "gold": [None] * 4 + ["shipping"]})
# e1, e2 tie 1-1 (billing vs shipping, shipping vs technical): the model breaks the ties;
# e3 is clear, e4 unlabeled
ANNOTATIONS = pd.DataFrame({"example_id": ["e1", "e1", "e2", "e2", "e3", "e3"],
                            "annotator_id": ["a", "b", "a", "b", "a", "b"],
                            "label": ["billing", "shipping", "shipping", "technical", "shipping", "shipping"]})
PREVIOUS = pd.DataFrame({"billing": [0.6, 0.1, 0.1, 0.3], "technical": [0.1, 0.3, 0.1, 0.3],
                         "shipping": [0.3, 0.6, 0.8, 0.4]}, index=pd.Index(["e1", "e2", "e3", "e4"], name="example_id"))


def _consensus_names(classes, method="crowdlab", previous=PREVIOUS):
    data = round_data.build(EXAMPLES, ANNOTATIONS, classes=classes)
    wide = consensus.to_wide(data.annotations, example_ids=data.labeled_ids)
    agreed = consensus.consensus(wide, round_data.previous_probs(previous, data), method=method, classes=classes,
                                 calibrate_probs=True, crowdlab_label="majority_vote", seed=0)
    return round_data.consensus_table(data, agreed)["consensus_label"].to_dict(), agreed.method


def test_build_maps_class_names_to_indices_in_the_order_of_classes():
    data = round_data.build(EXAMPLES, ANNOTATIONS, classes=CLASSES)
    assert list(data.labeled_ids) == ["e1", "e2", "e3"] and list(data.unlabeled_ids) == ["e4"]
    assert data.annotations["label"].tolist() == [0, 2, 2, 1, 2, 2]
    assert data.test_gold.tolist() == [2]
    flipped = round_data.build(EXAMPLES, ANNOTATIONS, classes=CLASSES[::-1])
    assert flipped.annotations["label"].tolist() == [2, 0, 0, 1, 0, 0]


def test_previous_probabilities_are_joined_to_the_classes_by_name_not_position():
    for classes in (CLASSES, CLASSES[::-1], ("technical", "billing", "shipping")):
        data = round_data.build(EXAMPLES, ANNOTATIONS, classes=classes)
        probs = round_data.previous_probs(PREVIOUS, data)
        np.testing.assert_allclose(probs, PREVIOUS.loc[["e1", "e2", "e3"], list(classes)].to_numpy())


@pytest.mark.parametrize("method", ["crowdlab", "majority"])
def test_reordering_classes_changes_no_consensus_label(method):
    labels, used = _consensus_names(CLASSES, method)
    assert used == method
    if method == "crowdlab":
        assert labels == {"e1": "billing", "e2": "shipping", "e3": "shipping"}  # ties go to the model's class
    for classes in (CLASSES[::-1], ("technical", "billing", "shipping"), ("shipping", "billing", "technical")):
        assert _consensus_names(classes, method)[0] == labels


def test_the_reordering_test_would_catch_a_join_by_position():
    """What crowdloop did before: the stored columns taken in order, whatever their names."""
    by_position = PREVIOUS.set_axis(list(CLASSES[::-1]), axis=1)
    assert _consensus_names(CLASSES[::-1], previous=by_position)[0] != _consensus_names(CLASSES)[0]


def test_majority_ties_follow_the_class_names_under_any_order():
    tied = pd.DataFrame({"a": [0.0] * 40, "b": [1.0] * 40}, index=[f"e{i:02d}" for i in range(40)])
    names = majority.majority(tied, classes=["x", "y"], seed=3).examples["consensus_label"].map({0: "x", 1: "y"})
    swapped = majority.majority(1 - tied, classes=["y", "x"], seed=3).examples["consensus_label"]
    assert names.nunique() == 2  # a seeded draw, not always one class
    assert swapped.map({0: "y", 1: "x"}).equals(names)


def test_a_labeled_example_without_previous_probabilities_means_majority_vote_and_says_so(caplog):
    data = round_data.build(EXAMPLES, ANNOTATIONS, classes=CLASSES)
    with caplog.at_level(logging.WARNING, logger="crowdloop"):
        assert round_data.previous_probs(PREVIOUS.drop(index="e2"), data) is None
    assert "1 labeled example(s), e.g. 'e2'" in caplog.text and "majority vote" in caplog.text
    assert _consensus_names(CLASSES, previous=PREVIOUS.drop(index="e2"))[1] == "majority"


def test_a_class_added_since_the_last_round_means_majority_vote_and_says_so(caplog):
    data = round_data.build(EXAMPLES, ANNOTATIONS, classes=(*CLASSES, "account"))
    with caplog.at_level(logging.WARNING, logger="crowdloop"):
        assert round_data.previous_probs(PREVIOUS, data) is None
    assert "class(es) account" in caplog.text


def test_a_class_no_longer_listed_is_dropped_and_rows_renormalised():
    unused = (PREVIOUS * 0.8).assign(account=0.2)  # the model gave a class now gone 0.2 everywhere
    data = round_data.build(EXAMPLES, ANNOTATIONS, classes=CLASSES)
    probs = round_data.previous_probs(unused, data)
    np.testing.assert_allclose(probs, PREVIOUS.loc[["e1", "e2", "e3"], list(CLASSES)].to_numpy())


def test_annotations_with_a_class_params_yaml_does_not_list_are_a_clear_error():
    with pytest.raises(CampaignError, match=r"labels \['shipping'\] that params.yaml 'classes' does not list"):
        round_data.build(EXAMPLES, ANNOTATIONS, classes=("billing", "technical"))


def test_frames_leave_with_class_names_and_pool_ids():
    data = round_data.build(EXAMPLES, ANNOTATIONS, classes=CLASSES)
    frame = round_data.probs_frame(data, np.full((3, 3), 1 / 3), np.array([[0.2, 0.3, 0.5]]))
    assert list(frame.columns) == list(CLASSES) and list(frame.index) == ["e1", "e2", "e3", "e4"]
    picks = pd.DataFrame({"example_id": ["e4", "e1"], "suggested_annotator": ["a", "b"], "score": [0.1, 0.2],
                          "cost": [1.0, 1.0]})
    batch = round_data.batch_table(data, picks)
    assert list(batch.columns) == ["example_id", "text", "suggested_annotator", "score", "cost", "label"]
    assert batch["text"].tolist() == ["d", "a"] and (batch["label"] == "").all()


def test_annotators_csv_names_the_worst_class_and_leaves_it_empty_for_who_never_disagrees(tmp_path):
    """Was the class index, and -1 for an annotator who agrees with the consensus on every label."""
    from crowdloop.tasks import store

    answers = pd.DataFrame({"example_id": ["e1", "e1", "e1", "e2", "e2", "e2", "e3", "e3"],
                            "annotator_id": ["a", "b", "c", "a", "b", "c", "a", "b"],
                            "label": ["billing", "billing", "technical", "shipping", "shipping", "shipping",
                                      "technical", "technical"]})
    for classes in (CLASSES, CLASSES[::-1]):  # a name, whatever the order of the classes
        data = round_data.build(EXAMPLES, answers, classes=classes)
        agreed = majority.majority(consensus.to_wide(data.annotations, example_ids=data.labeled_ids),
                                    classes=classes, seed=0)
        campaign = store.Campaign(tmp_path / "-".join(classes))
        store.write_round(campaign, 1, batch=pd.DataFrame(), consensus=round_data.consensus_table(data, agreed),
                          annotators=round_data.annotators_table(data, agreed), metrics={},
                          pred_probs=round_data.probs_frame(data, np.full((3, 3), 1 / 3), np.full((1, 3), 1 / 3)))
        text = (campaign.round_dir(1) / "annotators.csv").read_text()
        assert "-1" not in text, text
        read = store.read_annotators(campaign, 1).set_index("annotator_id")["worst_class"]
        assert read.isna().tolist() == [True, True, False] and read["c"] == "technical", text
