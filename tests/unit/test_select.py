"""Batch selection: order, caps, eligibility, load balancing, unroutable picks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.schema import PICK_COLUMNS
from crowdloop.tasks.select import ANYONE, Diversity, Routing, select_batch


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
    batch = _select(scores, batch_size=4).picks
    assert list(batch.columns) == list(PICK_COLUMNS)
    assert batch["example_id"].tolist() == ["e2", "e5", "e1", "e3"]
    assert batch["score"].tolist() == [0.1, 0.3, 0.5, 0.5]


def test_examples_at_the_annotation_cap_are_skipped():
    annotations = _annotations([("e1", "ann", 0), ("e1", "bob", 1), ("e2", "ann", 0)])
    quality = pd.Series({"ann": 0.9, "bob": 0.7, "cid": 0.5})
    selection = _select(_scores({"e1": 0.1, "e2": 0.2, "e3": 0.3}), annotations, quality, cap=2)
    assert selection.picks["example_id"].tolist() == ["e2", "e3"]
    assert selection.unroutable == []


def test_never_suggests_someone_who_already_labeled_the_example():
    annotations = _annotations([("e1", "ann", 0), ("e2", "bob", 1)])
    batch = _select(_scores({"e1": 0.1, "e2": 0.2}), annotations).picks
    assert batch["suggested_annotator"].tolist() == ["bob", "ann"]


def test_picks_are_spread_over_annotators_best_first():
    batch = _select(_scores({"e1": 0.1, "e2": 0.2, "e3": 0.3, "e4": 0.4}), batch_size=4).picks
    assert batch["suggested_annotator"].tolist() == ["ann", "bob", "ann", "bob"]
    assert batch["suggested_annotator"].value_counts().to_dict() == {"ann": 2, "bob": 2}


def test_equal_quality_goes_to_the_smaller_id_and_missing_quality_gets_the_median():
    annotations = _annotations([("e9", "cid", 0)])  # cid is known but has no quality yet
    quality = pd.Series({"ann": 0.2, "bob": 0.8, "dan": 0.6})  # median 0.6, as dan
    scores = _scores({"e1": 0.1, "e2": 0.2, "e3": 0.3, "e4": 0.4})
    batch = _select(scores, annotations, quality).picks
    assert batch["suggested_annotator"].tolist() == ["bob", "cid", "dan", "ann"]


def test_an_example_every_annotator_labeled_is_reported_as_unroutable():
    annotations = _annotations([("e1", "ann", 0), ("e1", "bob", 0)])
    selection = _select(_scores({"e1": 0.1, "e2": 0.2, "e3": 0.3}), annotations, batch_size=2)
    assert selection.unroutable == ["e1"]
    assert selection.picks["example_id"].tolist() == ["e2", "e3"]


def test_a_batch_larger_than_the_candidates_returns_every_candidate():
    annotations = _annotations([("e2", "ann", 0)])
    selection = _select(_scores({"e1": 0.3, "e2": 0.1}), annotations, batch_size=25, cap=1)
    assert selection.picks["example_id"].tolist() == ["e1"]
    assert len(_select(_scores({"e1": 0.3, "e2": 0.1}), batch_size=25).picks) == 2


def test_without_known_annotators_the_suggestion_is_left_to_the_user():
    batch = _select(_scores({"e1": 0.2, "e2": 0.1}), quality=pd.Series(dtype=float)).picks
    assert batch["example_id"].tolist() == ["e2", "e1"]
    assert batch["suggested_annotator"].tolist() == [ANYONE, ANYONE] == ["", ""]


def test_invalid_arguments_fail_early():
    scores = _scores({"e1": 0.1})
    with pytest.raises(ValueError, match="batch_size is -1"):
        _select(scores, batch_size=-1)
    assert _select(scores, batch_size=0).picks.empty  # what a spent budget leaves
    with pytest.raises(ValueError, match="max_annotations_per_example is 0"):
        _select(scores, cap=0)
    with pytest.raises(ValueError, match="is NaN"):
        _select(_scores({"e1": float("nan")}))
    with pytest.raises(ValueError, match="'e1' twice"):
        _select(pd.Series([0.1, 0.2], index=["e1", "e1"]))


# ---------------------------------------------------------------- diversity, budget, routing

def _embeddings(rows: dict) -> pd.DataFrame:
    return pd.DataFrame(rows).T.astype(float)


def test_near_duplicates_inside_a_batch_are_dropped():
    # e2 is a copy of e1 (cosine 1.0), e3 nearly (cosine ~0.995); e4 points elsewhere.
    vectors = _embeddings({"e1": [1, 0], "e2": [1, 0], "e3": [1, 0.1], "e4": [0, 1], "e5": [0.7, 0.7]})
    scores = _scores({"e1": 0.1, "e2": 0.2, "e3": 0.3, "e4": 0.4, "e5": 0.5})
    plain = _select(scores, batch_size=3).picks["example_id"].tolist()
    assert plain == ["e1", "e2", "e3"]
    diverse = select_batch(scores, NONE, QUALITY, batch_size=3, max_annotations_per_example=5,
                           diversity=Diversity(vectors, duplicate_threshold=0.95))
    assert diverse.picks["example_id"].tolist() == ["e1", "e4", "e5"]
    assert diverse.duplicates == ["e2", "e3"]


def test_kcenter_weight_trades_score_for_distance_from_what_is_covered():
    # e1, e2 best scored but next to the labeled example; e3 worse scored but far away.
    vectors = _embeddings({"e1": [1, 0.05], "e2": [1, -0.05], "e3": [-1, 0]})
    scores = _scores({"e1": 0.1, "e2": 0.2, "e3": 0.9})
    covered = np.array([[1.0, 0.0]])

    def pick(weight):
        options = Diversity(vectors, covered=covered, kcenter_weight=weight)
        return select_batch(scores, NONE, QUALITY, batch_size=2, max_annotations_per_example=5,
                            diversity=options).picks["example_id"].tolist()

    assert pick(0.0) == ["e1", "e2"]
    assert pick(0.8) == ["e3", "e1"]


def test_the_batch_stops_when_the_money_is_spent_and_costs_are_per_annotator():
    scores = _scores({f"e{i}": i / 10 for i in range(1, 6)})
    routing = Routing(costs={"ann": 3.0}, default_cost=1.0)
    selection = select_batch(scores, NONE, QUALITY, batch_size=5, max_annotations_per_example=5,
                             routing=routing, money_left=5.0)
    assert selection.picks["cost"].sum() <= 5.0
    assert selection.picks["cost"].tolist() == [3.0, 1.0, 1.0]  # ann, bob, bob: ann no longer fits
    assert selection.picks["suggested_annotator"].tolist() == ["ann", "bob", "bob"]
    assert selection.exhausted and selection.unroutable == []  # the money ran out: no pick was "unroutable"


def test_routing_never_asks_someone_who_labeled_it_and_respects_capacity():
    rng = np.random.default_rng(0)
    annotators = ["a1", "a2", "a3", "a4"]
    rows = [(f"e{i}", a, 0) for i in range(30) for a in annotators if rng.random() < 0.5]
    annotations = _annotations(rows)
    quality = pd.Series({"a1": 0.9, "a2": 0.8, "a3": 0.7, "a4": 0.6})
    scores = _scores({f"e{i}": rng.random() for i in range(30)})
    selection = select_batch(scores, annotations, quality, batch_size=20, max_annotations_per_example=5,
                             routing=Routing(capacity=3))
    batch = selection.picks
    done = set(zip(annotations["example_id"], annotations["annotator_id"]))
    assert not any((e, a) in done for e, a in zip(batch["example_id"], batch["suggested_annotator"]))
    assert batch["suggested_annotator"].value_counts().max() <= 3
    assert len(batch) == 12  # 4 annotators x capacity 3
    assert not batch["example_id"].duplicated().any()
    assert selection.exhausted  # everyone is full: picking stopped there


def test_only_the_picks_nobody_could_take_are_unroutable_when_capacity_runs_out():
    """12 annotators x capacity 2 for a batch of 25 (the demo with routing.capacity_per_annotator: 2)."""
    annotators = [f"a{i:02d}" for i in range(12)]
    scores = _scores({f"e{i:04d}": i / 1500 for i in range(1500)})
    selection = select_batch(scores, NONE, pd.Series(dict.fromkeys(annotators, 0.8)), batch_size=25,
                             max_annotations_per_example=5, routing=Routing(capacity=2))
    assert len(selection.picks) == 24 and selection.exhausted
    assert selection.unroutable == []  # was the other 1,476 examples of the pool
    ordinary = _select(_scores({"e1": 0.1, "e2": 0.2}), _annotations([("e1", "ann", 0), ("e1", "bob", 0)]))
    assert ordinary.unroutable == ["e1"] and not ordinary.exhausted


def test_with_a_capacity_the_best_annotator_fills_up_first():
    quality = pd.Series({"ann": 0.9, "bob": 0.7, "cid": 0.8})
    scores = _scores({f"e{i}": i / 10 for i in range(1, 6)})
    batch = select_batch(scores, NONE, quality, batch_size=5, max_annotations_per_example=5,
                         routing=Routing(capacity=2)).picks
    assert batch["suggested_annotator"].tolist() == ["ann", "ann", "cid", "cid", "bob"]


def test_in_simulation_routing_draws_only_from_annotators_holding_an_answer():
    holders = {"e1": {"zed"}, "e2": {"ann", "yan"}}  # e3: nobody holds an answer
    scores = _scores({"e1": 0.1, "e2": 0.2, "e3": 0.3})
    annotations = _annotations([("e2", "ann", 0)])
    selection = select_batch(scores, annotations, QUALITY, batch_size=3, max_annotations_per_example=5,
                             routing=Routing(holders=holders))
    assert selection.picks["suggested_annotator"].tolist() == ["zed", "yan"]
    assert selection.unroutable == ["e3"]  # reported, not silently dropped


def test_ranking_only_the_best_candidates_picks_what_ranking_the_whole_pool_picks(monkeypatch):
    from crowdloop.tasks import select

    rng = np.random.default_rng(0)
    ids = [f"e{i:04d}" for i in range(3000)]
    scores = pd.Series(rng.integers(0, 400, len(ids)) / 400, index=ids)  # many ties, broken by id
    # simulation holders: most examples have nobody left to ask, so most picks are unroutable
    holders = {e: {"ann", "bob"} for e in ids[::37]}
    annotations = _annotations([(e, "ann", 0) for e in ids[::5]] + [(e, "bob", 1) for e in ids[::10]])
    chosen = {}
    for factor in (1, 10 ** 6):  # 1: the first 25 candidates, doubled again and again; 10**6: the whole pool
        monkeypatch.setattr(select, "STREAM_FACTOR", factor)
        selection = select_batch(scores, annotations, QUALITY, batch_size=25, max_annotations_per_example=2,
                                 routing=Routing(holders=holders))
        chosen[factor] = (selection.picks, selection.unroutable)
    pd.testing.assert_frame_equal(chosen[1][0], chosen[10 ** 6][0])
    assert chosen[1][1] == chosen[10 ** 6][1] and len(chosen[1][1]) > 100
    assert len(chosen[1][0]) == 25
