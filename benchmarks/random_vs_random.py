"""Random against random: how often the rule for "never worse than random" fails a strategy that is random.

    python benchmarks/random_vs_random.py [--seeds 20] [--group 5] [--data rte,hs_brexit]
                                          [--out benchmarks/out/random_vs_random]

Runs `crowdloop simulate` on each dataset with two arms that are both random with the majority
vote: ``random`` and ``random_vs_random:other_draws`` (random's scores from other numbers), seeds
paired, so a seed's start and test split are the same in both. Then it cuts the seeds into
groups of ``--group`` and reads each group both ways (A − B and B − A) on macro-F1 and consensus
accuracy by the rule that `benchmarks/all.py` checks for the default strategy: the mean over rounds
is not below by more than one standard error (over seeds), and no round (``behind``) by more than
two; and the same with the rounds read at once (``behind (Holm)``: ``report.behind_holm``). It prints
every reading and how many pass on every dataset and metric at once: what each rule makes of a
strategy that is no better and no worse than random, at that many seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from _compare import (ROOT, SHARED_CACHE, dataset_args, importable_by_workers, print_readings, rule_readings,
                      simulate)
from crowdloop.cli import exit_frozen
from crowdloop.tasks.scoring.strategies import random_scores
from crowdloop.tasks.simulation_protocol import arm

STRATEGIES = ("random", "random_vs_random:other_draws")
A, B = (arm(strategy, "majority").name for strategy in STRATEGIES)  # the arms' names in curves.csv
METRICS = ("macro_f1", "consensus_accuracy")
OTHER = 7919  # added to the round's seed: B draws other numbers than A


def other_draws(inputs, *, seed: int):
    """``random``'s scores with the seed moved by ``OTHER``: an arm that is random, with other numbers."""
    return random_scores(inputs.n_labeled, inputs.n_unlabeled, seed=seed + OTHER)


def readings(curves: pd.DataFrame, name: str, group: int) -> list[dict]:
    """Each group of ``group`` seeds, both ways, each metric: the rule's verdict."""
    return rule_readings(curves, name, group, {"A - B": (A, B), "B - A": (B, A)}, METRICS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--group", type=int, default=5, help="seeds per reading (all.py's default: 5)")
    parser.add_argument("--data", default="rte,hs_brexit")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "random_vs_random")
    args = parser.parse_args()
    importable_by_workers()  # they import this module for the B arm
    rows = []
    for name in args.data.split(","):
        flags, target = dataset_args(name)
        out = args.out / name
        simulate([*flags, "--seeds", str(args.seeds), "--strategies", ",".join(STRATEGIES),
                  "--consensus", "majority", "--target", str(target), "--out", str(out), *SHARED_CACHE])
        rows += readings(pd.read_csv(out / "curves.csv"), name, args.group)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "readings.csv", index=False)
    print_readings(table, args.group)


if __name__ == "__main__":
    main()
    exit_frozen(0)  # as the `crowdloop` command exits: without the interpreter's last collections
