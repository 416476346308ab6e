"""Simulated annotators hand out each pooled answer at most once."""

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.annotators import simulate_answers

POOL = pd.DataFrame({"example_id": ["e1", "e1", "e1", "e2"], "annotator_id": ["a1", "a2", "a3", "a1"],
                     "label": ["x", "y", "x", "y"]})


def _collected(pairs):
    return pd.DataFrame(pairs, columns=["example_id", "annotator_id"])


def test_the_suggested_annotator_answers_when_they_can():
    batch = pd.DataFrame({"example_id": ["e1"], "suggested_annotator": ["a2"]})
    out = simulate_answers(batch, POOL, _collected([]), seed=0)
    assert out.values.tolist() == [["e1", "a2", "y"]]


def test_otherwise_annotators_already_seen_are_preferred():
    batch = pd.DataFrame({"example_id": ["e1"], "suggested_annotator": [""]})
    for seed in range(10):
        out = simulate_answers(batch, POOL, _collected([("e9", "a3")]), seed=seed)
        assert out["annotator_id"].tolist() == ["a3"]


def test_an_exhausted_example_yields_nothing():
    batch = pd.DataFrame({"example_id": ["e2", "e3"], "suggested_annotator": ["", ""]})
    out = simulate_answers(batch, POOL, _collected([("e2", "a1")]), seed=0)
    assert out.empty


@pytest.mark.parametrize("seed", range(5))
def test_never_repeats_and_never_invents_an_answer(seed):
    rng = np.random.default_rng(seed)
    pool = pd.DataFrame([(f"e{e}", f"a{a}", str(rng.integers(3))) for e in range(8) for a in range(5)
                         if rng.random() < 0.6], columns=["example_id", "annotator_id", "label"])
    collected = pool.sample(frac=0.3, random_state=seed)[["example_id", "annotator_id"]]
    handed = set(zip(collected["example_id"], collected["annotator_id"]))
    for round_ in range(6):
        batch = pd.DataFrame({"example_id": rng.choice([f"e{e}" for e in range(9)], size=6),
                              "suggested_annotator": rng.choice(["", "a0", "a1"], size=6)})
        out = simulate_answers(batch, pool, collected, seed=seed * 10 + round_)
        pairs = list(zip(out["example_id"], out["annotator_id"]))
        assert len(pairs) == len(set(pairs))
        assert not (set(pairs) & handed)
        assert set(map(tuple, out.values.tolist())) <= set(map(tuple, pool.values.tolist()))
        handed |= set(pairs)
        collected = pd.concat([collected, out[["example_id", "annotator_id"]]], ignore_index=True)


def test_deterministic_per_seed():
    pool = pd.DataFrame({"example_id": ["e1"] * 5, "annotator_id": [f"a{i}" for i in range(5)], "label": ["x"] * 5})
    batch = pd.DataFrame({"example_id": ["e1"], "suggested_annotator": [""]})
    picks = {simulate_answers(batch, pool, _collected([]), seed=s)["annotator_id"][0] for s in range(20)}
    assert len(picks) > 1
    assert simulate_answers(batch, pool, _collected([]), seed=3).equals(simulate_answers(batch, pool, _collected([]), seed=3))
