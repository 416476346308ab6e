"""Batch selection: order, caps, eligibility, load balancing, unroutable picks."""

from __future__ import annotations

import pandas as pd
import pytest

from crowdloop.tasks.select import ANYONE, BATCH_COLUMNS, select_batch


def _scores(values: dict) -> pd.Series:
    return pd.Series(values, dtype=float)


def _annotations(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["example_id", "annotator_id", "label"])


NONE = _annotations([])
QUALITY = pd.Series({"ann": 0.9, "bob": 0.7})


def _select(scores, annotations=NONE, quality=QUALITY, *, batch_size=10, cap=5):
    return select_batch(
        scores, annotations, quality, batch_size=batch_size, max_annotations_per_example=cap
    )


def test_lowest_scores_come_first_and_ties_go_by_example_id():
    scores = _scores({"e4": 0.9, "e2": 0.1, "e3": 0.5, "e1": 0.5, "e5": 0.3})
    batch = _select(scores, batch_size=4).batch
    assert list(batch.columns) == list(BATCH_COLUMNS)
    assert batch["example_id"].tolist() == ["e2", "e5", "e1", "e3"]
    assert batch["score"].tolist() == [0.1, 0.3, 0.5, 0.5]


def test_examples_at_the_annotation_cap_are_skipped():
    annotations = _annotations([("e1", "ann", 0), ("e1", "bob", 1), ("e2", "ann", 0)])
    quality = pd.Series({"ann": 0.9, "bob": 0.7, "cid": 0.5})
    selection = _select(_scores({"e1": 0.1, "e2": 0.2, "e3": 0.3}), annotations, quality, cap=2)
    assert selection.batch["example_id"].tolist() == ["e2", "e3"]
    assert selection.unroutable == []


def test_never_suggests_someone_who_already_labelled_the_example():
    annotations = _annotations([("e1", "ann", 0), ("e2", "bob", 1)])
    batch = _select(_scores({"e1": 0.1, "e2": 0.2}), annotations).batch
    assert batch["suggested_annotator"].tolist() == ["bob", "ann"]


def test_picks_are_spread_over_annotators_best_first():
    batch = _select(_scores({"e1": 0.1, "e2": 0.2, "e3": 0.3, "e4": 0.4}), batch_size=4).batch
    assert batch["suggested_annotator"].tolist() == ["ann", "bob", "ann", "bob"]
    assert batch["suggested_annotator"].value_counts().to_dict() == {"ann": 2, "bob": 2}


def test_equal_quality_goes_to_the_smaller_id_and_missing_quality_gets_the_median():
    annotations = _annotations([("e9", "cid", 0)])  # cid is known but has no quality yet
    quality = pd.Series({"ann": 0.2, "bob": 0.8, "dan": 0.6})  # median 0.6, as dan
    scores = _scores({"e1": 0.1, "e2": 0.2, "e3": 0.3, "e4": 0.4})
    batch = _select(scores, annotations, quality).batch
    assert batch["suggested_annotator"].tolist() == ["bob", "cid", "dan", "ann"]


def test_an_example_every_annotator_labelled_is_reported_as_unroutable():
    annotations = _annotations([("e1", "ann", 0), ("e1", "bob", 0)])
    selection = _select(_scores({"e1": 0.1, "e2": 0.2, "e3": 0.3}), annotations, batch_size=2)
    assert selection.unroutable == ["e1"]
    assert selection.batch["example_id"].tolist() == ["e2", "e3"]


def test_a_batch_larger_than_the_candidates_returns_every_candidate():
    annotations = _annotations([("e2", "ann", 0)])
    selection = _select(_scores({"e1": 0.3, "e2": 0.1}), annotations, batch_size=25, cap=1)
    assert selection.batch["example_id"].tolist() == ["e1"]
    assert len(_select(_scores({"e1": 0.3, "e2": 0.1}), batch_size=25).batch) == 2


def test_without_known_annotators_the_suggestion_is_left_to_the_user():
    batch = _select(_scores({"e1": 0.2, "e2": 0.1}), quality=pd.Series(dtype=float)).batch
    assert batch["example_id"].tolist() == ["e2", "e1"]
    assert batch["suggested_annotator"].tolist() == [ANYONE, ANYONE] == ["", ""]


def test_invalid_arguments_fail_early():
    scores = _scores({"e1": 0.1})
    with pytest.raises(ValueError, match="batch_size is 0"):
        _select(scores, batch_size=0)
    with pytest.raises(ValueError, match="max_annotations_per_example is 0"):
        _select(scores, cap=0)
    with pytest.raises(ValueError, match="is NaN"):
        _select(_scores({"e1": float("nan")}))
    with pytest.raises(ValueError, match="'e1' twice"):
        _select(pd.Series([0.1, 0.2], index=["e1", "e1"]))
