"""Simulated annotators hand out each pooled answer at most once, preferring whom they should."""

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.annotators import holders, simulate_answers

POOL = pd.DataFrame({"example_id": ["e1", "e1", "e1", "e2"], "annotator_id": ["a1", "a2", "a3", "a1"],
                     "label": ["x", "y", "x", "y"]})


def _collected(pairs):
    return pd.DataFrame(pairs, columns=["example_id", "annotator_id"])


def _batch(examples, suggested=None):
    return pd.DataFrame({"example_id": examples, "suggested_annotator": suggested or [None] * len(examples)})


def test_the_suggested_annotator_answers_when_they_can():
    for seed in range(10):
        out = simulate_answers(_batch(["e1"], ["a2"]), POOL, _collected([]), seed=seed)
        assert out.values.tolist() == [["e1", "a2", "y"]]


def test_a_suggested_annotator_with_nothing_left_falls_back():
    out = simulate_answers(_batch(["e1"], ["a2"]), POOL, _collected([("e1", "a2"), ("e7", "a3")]), seed=0)
    assert out.values.tolist() == [["e1", "a3", "x"]]


@pytest.mark.parametrize("empty", ["", None, np.nan])
def test_otherwise_annotators_already_seen_are_preferred(empty):
    for seed in range(10):
        out = simulate_answers(_batch(["e1"], [empty]), POOL, _collected([("e9", "a3")]), seed=seed)
        assert out["annotator_id"].tolist() == ["a3"]


def test_without_seen_annotators_anyone_available_answers():
    batch = pd.DataFrame({"example_id": ["e1"]})  # no suggested_annotator column at all
    picks = {simulate_answers(batch, POOL, _collected([("e1", "a1")]), seed=s)["annotator_id"][0]
             for s in range(20)}
    assert picks == {"a2", "a3"}


def test_an_exhausted_example_yields_nothing_and_the_rest_keep_batch_order():
    batch = _batch(["e2", "e3", "e1", "e1", "e1", "e1"])
    out = simulate_answers(batch, POOL, _collected([("e2", "a1")]), seed=0)
    assert out["example_id"].tolist() == ["e1", "e1", "e1"]
    assert sorted(out["annotator_id"]) == ["a1", "a2", "a3"]
    assert list(out.columns) == ["example_id", "annotator_id", "label"]


@pytest.mark.parametrize("seed", range(5))
def test_never_repeats_and_never_invents_an_answer(seed):
    rng = np.random.default_rng(seed)
    pool = pd.DataFrame([(f"e{e}", f"a{a}", str(rng.integers(3))) for e in range(8) for a in range(5)
                         if rng.random() < 0.6], columns=["example_id", "annotator_id", "label"])
    collected = pool.sample(frac=0.3, random_state=seed)[["example_id", "annotator_id"]]
    handed = set(zip(collected["example_id"], collected["annotator_id"]))
    pooled = set(map(tuple, pool.values.tolist()))
    for round_ in range(6):
        batch = _batch(list(rng.choice([f"e{e}" for e in range(9)], size=6)),
                       list(rng.choice(["", "a0", "a1"], size=6)))
        before = _available(pool, collected)
        out = simulate_answers(batch, pool, collected, seed=seed * 10 + round_)
        pairs = list(zip(out["example_id"], out["annotator_id"]))
        assert len(pairs) == len(set(pairs))
        assert not (set(pairs) & handed)
        assert set(map(tuple, out.values.tolist())) <= pooled
        # a row goes unanswered only when its example has nothing left for it
        wanted = batch["example_id"].value_counts()
        given = out["example_id"].value_counts().reindex(wanted.index, fill_value=0)
        assert (given == np.minimum(wanted, before.reindex(wanted.index, fill_value=0))).all()
        handed |= set(pairs)
        collected = pd.concat([collected, out[["example_id", "annotator_id"]]], ignore_index=True)
    assert _available(pool, collected).sum() == len(pool) - len(handed)


def test_deterministic_per_seed():
    pool = pd.DataFrame({"example_id": ["e1"] * 5, "annotator_id": [f"a{i}" for i in range(5)], "label": ["x"] * 5})
    batch = _batch(["e1"])
    picks = {simulate_answers(batch, pool, _collected([]), seed=s)["annotator_id"][0] for s in range(20)}
    assert len(picks) > 1
    assert simulate_answers(batch, pool, _collected([]), seed=3).equals(
        simulate_answers(batch, pool, _collected([]), seed=3))


def test_two_strategies_asking_for_one_example_hear_the_same_annotator():
    """Common random numbers: who answers depends on the seed and the example, not on the rest of
    the batch, its order, or the round the example is asked in."""
    pool = pd.DataFrame([(f"e{e}", f"a{a}", str((e + a) % 3)) for e in range(30) for a in range(6)],
                        columns=["example_id", "annotator_id", "label"])
    seen = _collected([(f"x{a}", f"a{a}") for a in range(6)])  # everyone seen: the draw alone decides
    first = simulate_answers(_batch(["e3", "e7", "e11"]), pool, seen, seed=4)
    other = simulate_answers(_batch(["e20", "e11", "e5", "e3"]), pool, seen, seed=4)
    later = simulate_answers(_batch(["e11"]), pool, pd.concat([seen, _collected([("e5", "a0"), ("e9", "a2")])]),
                             seed=4)
    heard = dict(zip(first["example_id"], first["annotator_id"]))
    assert dict(zip(other["example_id"], other["annotator_id"]))["e3"] == heard["e3"]
    assert dict(zip(other["example_id"], other["annotator_id"]))["e11"] == heard["e11"]
    assert later["annotator_id"].tolist() == [heard["e11"]]
    # the second request for an example hears the next in line, whenever it comes
    twice = simulate_answers(_batch(["e3", "e3"]), pool, seen, seed=4)
    after = simulate_answers(_batch(["e3"]), pool, pd.concat([seen, _collected([("e3", heard["e3"])])]), seed=4)
    assert twice["annotator_id"].tolist() == [heard["e3"], after["annotator_id"][0]]
    # and the seed still decides who is first in line
    assert len({simulate_answers(_batch(["e3"]), pool, seen, seed=s)["annotator_id"][0] for s in range(20)}) > 1


def _available(uncollected, collected) -> pd.Series:
    """Answers still available per example, from who holds one."""
    return pd.Series({e: len(who) for e, who in holders(uncollected, collected).items()}, dtype="int64")


def test_holders_are_the_annotators_with_an_answer_not_yet_collected():
    held = holders(POOL, _collected([("e1", "a2"), ("e2", "a1"), ("e5", "a1")]))
    assert held == {"e1": {"a1", "a3"}}
