"""The default strategy vs random on the Snow et al. RTE crowd labels (800 items, 164 workers).

    python benchmarks/rte.py [--seeds 5] [--out benchmarks/out/rte]

Start: 100 items x 1 label; 20 rounds x 20 annotations; a quarter of the items
held out as the gold test split. Besides the classifier's test accuracy it prints
the consensus accuracy against the expert gold label per round: with a classifier
that cannot learn the task, better consensus labels are what re-labeling buys.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from _compare import ROOT, dataset_args, headline, per_round, simulate
from crowdloop.cli import exit_frozen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "rte")
    args = parser.parse_args()
    flags, target = dataset_args("rte")
    seconds = simulate([*flags, "--seeds", str(args.seeds), "--target", str(target), "--out", str(args.out)])
    curves = pd.read_csv(args.out / "curves.csv")
    table = per_round(curves)
    consensus = curves.groupby(["round", "strategy"])["consensus_accuracy"].mean().unstack(1)
    table = table.join(consensus.add_prefix("consensus_"))
    table.to_csv(args.out / "comparison.csv", float_format="%.4f")
    print(table.round(3).to_string())
    for metric in ("macro_f1", "consensus_accuracy"):
        print(headline(curves, target=target, window=(4, 20), metric=metric))
    print(f"wall time {seconds:.0f} s; median round {curves['seconds'].median():.2f} s")


if __name__ == "__main__":
    main()
    exit_frozen(0)  # as the `crowdloop` command exits: without the interpreter's last collections
