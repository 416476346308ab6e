"""The default strategy against random on every dataset in ../shared/datasets: one table, a figure each.

    python benchmarks/all.py [--seeds 5] [--data politeness,rte,hs_brexit] [--evaluate test|validation]
                             [--params params.yaml] [--group N] [--out benchmarks/out/all]

For each dataset it runs `crowdloop simulate` with the arms ``auto`` (params.yaml's default
strategy, CROWDLAB consensus) and ``random`` (majority vote), then compares them, seeds
paired, on accuracy, macro-F1, balanced accuracy and consensus accuracy (consensus labels
against the dataset's gold, or the majority of all its annotations):

* ``error ratio``: mean over rounds of (1 - auto) / (1 - random); < 1 means fewer errors;
* ``mean diff ± se``: auto - random, mean over rounds, with its standard error over seeds;
* ``worst round``: the round where auto trails most, the difference and its standard error;
* ``won``: rounds where auto's mean is higher; ``behind``: rounds where it is lower by more
  than two standard errors (over seeds) of that round's difference; ``behind (Holm)``: the same
  with all rounds read at once (``report.behind_holm``); ``won (signal)``: ``won``
  over the rounds where auto's model carried signal in most seeds (``signal rounds`` of them);
* ``to target``: mean annotations until the mean metric reaches the dataset's target;
* ``final``: the last round's mean ± std over seeds, auto then random.

Writes table.csv and table.md, and <dataset>.png (the curves of both arms) in --out. With
``--group N`` it also cuts the seeds into groups of N and reads each group on macro-F1 and
consensus accuracy by the rule "never worse than random" (the mean over rounds not below by more
than one standard error, no round by more than two; and with the rounds read at once), as
`benchmarks/random_vs_random.py` reads random against itself: groups.csv, and how many groups hold.
Use ``--evaluate validation`` when choosing settings: it scores on a split carved from the
pool and never looks at the test split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from _compare import ROOT, SOURCES, comparison_rows, dataset_args, print_readings, rule_readings, simulate
from crowdloop.cli import exit_frozen
from crowdloop.tasks import report

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--data", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}")
    parser.add_argument("--evaluate", choices=["test", "validation"], default="test")
    parser.add_argument("--params", type=Path, default=None, help="params.yaml for the model settings")
    parser.add_argument("--strategies", default="auto,random", help="the arm under test, then the baseline")
    parser.add_argument("--group", type=int, default=None, help="also read the rule in groups of this many seeds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "all")
    args = parser.parse_args()
    strategy, baseline = args.strategies.split(",")
    rows, groups, seconds = [], [], {}
    for name in args.data.split(","):
        flags, target = dataset_args(name)
        out = args.out / name
        extra = ["--params", str(args.params)] if args.params else []
        seconds[name] = simulate([*flags, "--seeds", str(args.seeds), "--strategies", args.strategies,
                                  "--evaluate", args.evaluate, "--target", str(target), "--out", str(out), *extra])
        curves = pd.read_csv(out / "curves.csv")
        rows += comparison_rows(name, curves, target, strategy, baseline)
        if args.group:
            groups += rule_readings(curves, name, args.group, {f"{strategy} - {baseline}": (strategy, baseline)})
        figure = report.plot(curves, title=f"{name} ({args.evaluate})",
                             metrics=("accuracy", "macro_f1", "consensus_accuracy"))
        figure.savefig(args.out / f"{name}.png", dpi=110)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "table.csv", index=False)
    shown = table[[c for c in table.columns if not c.startswith("_")]]
    (args.out / "table.md").write_text(shown.to_markdown(index=False) + "\n")
    print(shown.to_string(index=False))
    if groups:
        pd.DataFrame(groups).to_csv(args.out / "groups.csv", index=False)
        print_readings(pd.DataFrame(groups), args.group)
    print("wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
    exit_frozen(0)  # as the `crowdloop` command exits: without the interpreter's last collections
