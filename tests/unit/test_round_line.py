"""The line `crowdloop round` prints: what it says when there is no test score."""

from __future__ import annotations

from crowdloop import rounds_cmd


def test_a_first_round_with_nothing_labeled_says_there_is_no_model_not_no_test_split():
    """A campaign with a gold test split and no initial answers: its cold-start round said
    'no test split to score' (there is one; there is no model yet)."""
    line = rounds_cmd.round_line(1, {"annotations": 0, "batch_size": 25, "labeled_examples": 0}, {"plan": 1.0})
    assert line.startswith("round 1: nothing labeled yet, no model to score, 0 annotations, batch of 25 -> ")
    line = rounds_cmd.round_line(2, {"annotations": 25, "batch_size": 25, "labeled_examples": 20}, {"plan": 1.0})
    assert line.startswith("round 2: no test split to score, 25 annotations")


def test_a_round_whose_labels_are_of_one_class_says_so():
    line = rounds_cmd.round_line(1, {"annotations": 3, "batch_size": 25, "labeled_examples": 3, "model_trained": 0},
                                 {"plan": 1.0})
    assert line.startswith("round 1: labels of one class so far, no model to score, 3 annotations")
