"""benchmarks/random_vs_random.py: its B arm is random with other numbers, and it reads the rule both ways."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.scoring.strategies import ScoreInputs, random


@pytest.fixture(scope="module")
def aa(benchmark_script):
    return benchmark_script("random_vs_random")


def test_the_other_arm_is_random_with_other_numbers(aa):
    inputs = ScoreInputs(labels_multiannotator=pd.DataFrame({"a": [0.0, 1.0]}), n_unlabeled=5, n_classes=2)
    mine, theirs = np.r_[aa.other_draws(inputs, seed=3)], np.r_[random(inputs, seed=3)]
    assert mine.shape == theirs.shape == (7,) and ((0 <= mine) & (mine < 1)).all()
    assert not np.allclose(mine, theirs)
    np.testing.assert_array_equal(mine, np.r_[random(inputs, seed=3 + aa.OTHER)])  # random, seed moved


def _curves(aa, b_minus_a: dict[tuple[int, int], float]) -> pd.DataFrame:
    """Seeds 0-9, rounds 1-3; A at 0.5 (consensus 0.8), B at A plus ``b_minus_a[(seed, round)]`` (default 0)."""
    rows = []
    for seed in range(10):
        for round_ in (1, 2, 3):
            shift = b_minus_a.get((seed, round_), 0.0)
            for name, value in ((aa.A, 0.5), (aa.B, 0.5 + shift)):
                rows.append({"strategy": name, "seed": seed, "round": round_, "test_macro_f1": value,
                             "consensus_accuracy": 0.8 + (value - 0.5)})
    return pd.DataFrame(rows)


def test_the_arms_are_named_as_simulate_names_them(aa):
    assert (aa.A, aa.B) == ("random+majority", "random_vs_random.other_draws+majority")


def test_each_group_is_read_both_ways_and_a_round_behind_fails_only_the_arm_behind(aa):
    # seeds 0-4: B behind in round 2 in every seed (by 0.02 to 0.06); seeds 5-9: a wobble both ways
    shifts = {(seed, 2): -0.02 - 0.01 * seed for seed in range(5)}
    shifts.update({(5, 3): 0.01, (6, 3): -0.01})
    table = pd.DataFrame(aa.readings(_curves(aa, shifts), "d", group=5)).set_index(["seeds", "reading", "metric"])
    assert len(table) == 2 * 2 * 2  # two groups, both ways, two metrics
    assert not table.loc[("0-4", "B - A", "macro_f1"), "holds"]
    assert table.loc[("0-4", "B - A", "macro_f1"), "behind"] == 1
    # −5.7 standard errors with 4 degrees of freedom: p 0.002, behind too when the 3 rounds are read at once
    assert table.loc[("0-4", "B - A", "macro_f1"), ["behind (Holm)", "holds (Holm)"]].tolist() == [1, False]
    assert table.loc[("0-4", "A - B", "macro_f1"), "holds"]  # A is ahead there
    assert table.loc[("0-4", "B - A", "consensus_accuracy"), "behind"] == 1
    assert table.loc[pd.IndexSlice["5-9", :, :], ["holds", "holds (Holm)"]].all().all()  # one seed each way
