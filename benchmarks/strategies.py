"""Every acquisition strategy on politeness (tutorial preset) and RTE: one table per dataset.

    python benchmarks/strategies.py [--data politeness,rte,hs_brexit] [--seeds 3] [--rounds N]
                                    [--strategies all] [--out benchmarks/out/strategies]

Runs `crowdloop simulate --strategies ...` per dataset (head backend unless
--params says otherwise) and prints strategy × (accuracy at rounds 5, 10 and the
last; annotations to reach the target; ROI against random). The learning-curve
figure with every strategy is logged to MLflow with the run (and written as
learning_curve.png in each output folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from _compare import ROOT, dataset_args, simulate
from crowdloop.cli import exit_frozen
from crowdloop.tasks import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="politeness,rte", help="comma-separated: politeness, rte, hs_brexit")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=None, help="default: the preset's")
    parser.add_argument("--strategies", default="all")
    parser.add_argument("--params", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "strategies")
    args = parser.parse_args()
    for name in args.data.split(","):
        flags, target = dataset_args(name)
        out = args.out / name
        extra = ["--rounds", str(args.rounds)] if args.rounds else []
        extra += ["--params", str(args.params)] if args.params else []
        seconds = simulate([*flags, "--seeds", str(args.seeds), "--strategies", args.strategies,
                            "--target", str(target), "--out", str(out), *extra])
        curves = pd.read_csv(out / "curves.csv")
        print(f"\n== {name}: {curves['seed'].nunique()} seed(s), {int(curves['round'].max())} rounds, "
              f"{seconds:.0f} s ==")
        last = int(curves["round"].max())
        print(report.summary(curves, at_rounds=sorted({5, 10, 25, last} & set(curves["round"])), target=target,
                             baseline="random").to_string())


if __name__ == "__main__":
    main()
    exit_frozen(0)  # as the `crowdloop` command exits: without the interpreter's last collections
