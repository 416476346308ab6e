"""Shared by the benchmark scripts: run `crowdloop simulate`, then compare its curves."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from crowdloop import cli
from crowdloop.tasks import report

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


def simulate(args: list[str]) -> float:
    """Run `crowdloop simulate ARGS`; returns wall seconds."""
    start = time.perf_counter()
    code = cli.main(["simulate", *args])
    if code:
        raise SystemExit(f"crowdloop simulate failed with exit code {code}")
    return time.perf_counter() - start


def per_round(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy per round and strategy, with mean annotations."""
    means = report.mean_curves(curves)
    table = means.pivot(index="round", columns="strategy", values="accuracy")
    table.insert(0, "annotations", means.groupby("round")["annotations"].mean())
    return table


def headline(curves: pd.DataFrame, *, target: float, window: tuple[int, int]) -> str:
    reach = report.annotations_to_reach(curves, target)
    ratio = report.error_ratio(curves, "activelab", "random", rounds=window)
    last = per_round(curves).iloc[-1]
    lines = [f"annotations to reach {target:.0%}: " + ", ".join(
        f"{k} {'never' if v != v else int(v)}" for k, v in reach.items()),
        f"error ratio activelab/random, rounds {window[0]}-{window[1]}: {ratio:.3f}",
        f"final round: activelab {last.get('activelab', float('nan')):.3f}, random {last.get('random', float('nan')):.3f}"]
    return "\n".join(lines)
