"""benchmarks/rare_first.py: its arm asks agreement's re-labels and random's number of first labels,
the first labels going to the examples most likely of the rarest consensus class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.scoring.strategies import ScoreInputs, agreement


@pytest.fixture(scope="module")
def rf(benchmark_script):
    return benchmark_script("rare_first")


def _inputs(pred_probs_unlabeled: np.ndarray | None) -> ScoreInputs:
    # four labeled examples: majorities 0, 0, 0 and 2; class 1 has none, so it is the rarest
    wide = pd.DataFrame({"a": [0.0, 0.0, 0.0, 2.0], "b": [0.0, np.nan, 1.0, np.nan]})
    return ScoreInputs(labels_multiannotator=wide, n_unlabeled=5, n_classes=3, pred_probs_unlabeled=pred_probs_unlabeled,
                       pred_probs=None if pred_probs_unlabeled is None else np.full((4, 3), 1 / 3))


def test_first_labels_go_to_the_likeliest_of_the_rarest_class(rf):
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.3, 0.3, 0.4], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6]])
    labeled, unlabeled = rf.rare_first(_inputs(probs), seed=4)
    agreed_labeled, draws = agreement(_inputs(probs), seed=4)
    np.testing.assert_array_equal(labeled, agreed_labeled)  # the re-labels: agreement's
    np.testing.assert_array_equal(np.sort(unlabeled), np.sort(draws))  # random's numbers: as many first labels
    assert list(np.argsort(unlabeled)) == [1, 3, 2, 4, 0]  # by P(class 1), highest first


def test_before_any_model_it_is_agreement(rf):
    labeled, unlabeled = rf.rare_first(_inputs(None), seed=4)
    expected = agreement(_inputs(None), seed=4)
    np.testing.assert_array_equal(labeled, expected[0])
    np.testing.assert_array_equal(unlabeled, expected[1])
