"""ActiveLab vs random on the Stanford Politeness data, the cleanlab tutorial's protocol.

    python benchmarks/politeness.py [--seeds 5] [--out benchmarks/out/politeness]

Runs `crowdloop simulate --format tutorial --preset tutorial` (the default strategy,
`auto`, against random), then puts our mean test accuracy per round beside the
tutorial's published DistilBERT curves (`reference_curve.csv`) in one table
(comparison.csv) and one figure (comparison.png), and prints annotations-to-90% and
the auto/random error ratio over rounds 4-25 (accuracy, as the tutorial reports it,
and macro-F1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from _compare import DATASETS, ROOT, headline, per_round, simulate
from crowdloop.cli import exit_frozen
from crowdloop.tasks import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--params", type=Path, default=None, help="params.yaml (model settings)")
    parser.add_argument("--evaluate", choices=["test", "validation"], default=None,
                        help="validation: score on a split carved from the pool (for choosing settings)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "politeness")
    args = parser.parse_args()
    data = DATASETS / "politeness"
    extra = ["--evaluate", args.evaluate] if args.evaluate else []
    extra += ["--rounds", str(args.rounds)] if args.rounds else []
    extra += ["--params", str(args.params)] if args.params else []
    seconds = simulate([str(data), "--format", "tutorial", "--preset", "tutorial", "--seeds", str(args.seeds),
                        "--out", str(args.out), *extra])

    curves = pd.read_csv(args.out / "curves.csv")
    ours = per_round(curves)
    published = pd.read_csv(data / "reference_curve.csv")
    published = published.groupby(["method", "round"])["test_accuracy"].mean().unstack(0)
    table = ours.join(published.add_prefix("published_"), how="left")
    table.to_csv(args.out / "comparison.csv", float_format="%.4f")
    reference = published.stack().rename("accuracy").reset_index().rename(columns={"method": "strategy"})
    reference["annotations"] = 200 + 25 * (reference["round"] - 1)
    figure = report.plot(curves, title="Politeness: ours (head) vs published DistilBERT", reference=reference)
    figure.savefig(args.out / "comparison.png", dpi=120)

    print(table.round(3).to_string())
    print(headline(curves, target=0.9, window=(4, 25)))
    print(headline(curves, target=0.9, window=(4, 25), metric="macro_f1"))
    pub = published.stack().rename("test_accuracy").reset_index().rename(columns={"method": "strategy"})
    pub["seed"], pub["annotations"] = 0, 200 + 25 * (pub["round"] - 1)
    print("published:", headline(pub, target=0.9, window=(4, 25), strategy="activelab").replace("\n", "; "))
    print(f"wall time {seconds:.0f} s for {curves['seed'].nunique()} seeds x {curves['strategy'].nunique()} arms; "
          f"median round {curves['seconds'].median():.2f} s")


if __name__ == "__main__":
    main()
    exit_frozen(0)  # as the `crowdloop` command exits: without the interpreter's last collections
