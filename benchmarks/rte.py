"""ActiveLab vs random on the Snow et al. RTE crowd labels (800 items, 164 workers).

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

from _compare import DATASETS, ROOT, headline, per_round, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "rte")
    args = parser.parse_args()
    data = DATASETS / "rte"
    seconds = simulate([
        str(data / "rte.standardized.tsv"), "--format", "long", "--examples", str(data / "rte1.tsv"),
        "--example-col", "orig_id", "--annotator-col", "!amt_worker_ids", "--label-col", "response",
        "--gold-col", "gold", "--examples-id-col", "id", "--text-cols", "text,hypothesis",
        "--preset", "rte", "--seeds", str(args.seeds), "--target", "0.8", "--out", str(args.out)])
    curves = pd.read_csv(args.out / "curves.csv")
    table = per_round(curves)
    consensus = curves.groupby(["round", "strategy"])["consensus_accuracy"].mean().unstack(1)
    table = table.join(consensus.add_prefix("consensus_"))
    table.to_csv(args.out / "comparison.csv", float_format="%.4f")
    print(table.round(3).to_string())
    print(headline(curves, target=0.8, window=(4, 20)))
    print(f"wall time {seconds:.0f} s; median round {curves['seconds'].median():.2f} s")


if __name__ == "__main__":
    main()
