"""First labels for the rare class: tried as the default's no-signal choice, not kept.

    python benchmarks/rare_first.py [--seeds 20] [--data hs_brexit,rte] [--evaluate validation|test]
                                    [--out benchmarks/out/rare_first]

Runs `crowdloop simulate` on each dataset with three arms, seeds paired: ``auto`` (the default),
``rare_first:rare_first`` (below) and ``random``, then prints each arm against random in the
columns of `benchmarks/all.py`'s table (accuracy, macro-F1, balanced and consensus accuracy; the mean over
rounds ± its standard error over seeds, the worst round, rounds won and behind ...); and, of
the examples each arm labeled before round 14, how many have the minority gold class and how
many all their annotators agree on.

``rare_first``: ``agreement``'s scores (its re-labels: ties first), with the unlabeled examples'
draws dealt out again so that the first labels go to the examples the model gives the highest
probability of the class that the fewest consensus labels hold so far. It reads the model even
while that model has no signal: a model that cannot tell the classes apart on the whole may still
rank the rare class. README "Will it save annotations on my data?" has what it showed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from _compare import ROOT, SHARED_CACHE, comparison_rows, dataset_args, importable_by_workers, simulate
from crowdloop.cli import exit_frozen
from crowdloop.tasks import files
from crowdloop.tasks.scoring.strategies import agreement

ARMS = ("auto", "rare_first:rare_first", "random")


def rare_first(inputs, *, seed: int):
    """``agreement``'s scores; the unlabeled examples' draws in the order of the model's probability
    of the class the fewest labeled examples' majorities hold (random's order before any model)."""
    scores_labeled, draws = agreement(inputs, seed=seed)
    if inputs.pred_probs_unlabeled is None or not len(draws):
        return scores_labeled, draws
    counts = inputs.counts()
    majorities = np.bincount(counts.argmax(axis=1), minlength=inputs.n_classes) if len(counts) else np.zeros(1)
    rare = int(np.argmin(majorities))
    order = np.argsort(-inputs.pred_probs_unlabeled[:, rare], kind="stable")  # most likely rare first
    scores_unlabeled = np.empty(len(draws))
    scores_unlabeled[order] = np.sort(draws)
    return scores_labeled, scores_unlabeled


def labeled_before(folder: Path, before_round: int = 14) -> pd.DataFrame:
    """Per arm, means over seeds of the examples labeled before ``before_round``: how many have the
    dataset's minority class as gold, and the share whose annotators (all the data holds) agree."""
    examples = files.read_parquet(folder / "replay" / "examples.parquet").set_index("example_id")
    gold = examples.loc[examples["split"] == "pool", "gold"].astype(str)
    minority = gold.value_counts().idxmin()
    every = pd.concat([files.read_parquet(folder / "replay" / f"{part}.parquet")
                       for part in ("initial", "uncollected")])
    unanimous = every.groupby("example_id")["label"].nunique() == 1
    rows: dict[str, list[tuple[int, float]]] = {}
    for checkpoint in sorted((folder / "checkpoints").iterdir()):
        answers = files.read_parquet(checkpoint / "annotations.parquet")
        labeled = answers.loc[answers["round"] < before_round, "example_id"].unique()
        rows.setdefault(checkpoint.name.rsplit("-seed", 1)[0], []).append(
            (int((gold.reindex(labeled) == minority).sum()), float(unanimous.reindex(labeled).mean())))
    return pd.DataFrame({arm: np.mean(values, axis=0) for arm, values in rows.items()},
                        index=[f"gold {minority}", "unanimous share"]).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--data", default="hs_brexit,rte")
    parser.add_argument("--evaluate", choices=["test", "validation"], default="validation")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "rare_first")
    args = parser.parse_args()
    importable_by_workers()  # they import this module for the rare_first arm
    rows = []
    for name in args.data.split(","):
        flags, target = dataset_args(name)
        out = args.out / name
        simulate([*flags, "--seeds", str(args.seeds), "--strategies", ",".join(ARMS), "--evaluate", args.evaluate,
                  "--target", str(target), "--out", str(out), *SHARED_CACHE])
        curves = pd.read_csv(out / "curves.csv")
        rows += [{"arm": arm, **row} for arm in sorted(set(curves["strategy"]) - {"random"})
                 for row in comparison_rows(name, curves, target, arm, "random")]
        print(f"{name}: the examples labeled before round 14 (means over seeds):")
        print(labeled_before(out).round(3).to_string())
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "table.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
    exit_frozen(0)  # as the `crowdloop` command exits: without the interpreter's last collections
