"""A campaign with a large pool (a million texts by default), for benchmarks/scale.py.

    python benchmarks/pool_campaign.py campaigns/million [--pool 1000000] [--seed 0]

The demo campaign's generator (tasks/demo.py) writes the first ``--demo-pool`` pool
tickets, the 1,000 gold test tickets and the 300 labeled ones with their annotators;
the rest of the pool are demo tickets again, each made unique by a reference number
(``... (ref 0123456)``), so every text is new to the embedding cache. Their gold is the
ticket's. No remote (``remote.url: null``), the head backend (CPU). Never part of the tests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

import crowdloop
from crowdloop.tasks.demo import DEMO_CLASSES, make_demo

PARAMS = {"model": {"backend": "head"}, "remote": {"url": None}}


def make(root: Path, *, n_pool: int = 1_000_000, demo_pool: int = 5_000, seed: int = 0) -> crowdloop.Campaign:
    """The campaign at ``root``: ``n_pool`` pool texts, 1,000 gold test texts, 300 labeled (round 0)."""
    demo = make_demo(seed=seed, n_pool=min(demo_pool, n_pool), n_test=1_000, n_initial=300)
    pool = demo.examples[demo.examples["split"] == "pool"]
    extra = n_pool - len(pool)
    rng = np.random.default_rng(seed)
    base = pool.iloc[rng.integers(0, len(pool), extra)]
    more = pd.DataFrame({
        "example_id": [f"x{i:07d}" for i in range(extra)],
        "text": [f"{text} (ref {i:07d})" for i, text in enumerate(base["text"])],
        "split": "pool",
        "gold": base["gold"].to_numpy(),
    })
    examples = pd.concat([pool, more, demo.examples[demo.examples["split"] == "test"]], ignore_index=True)
    return crowdloop.init_campaign(root, examples, classes=DEMO_CLASSES, seed=seed, initial=demo.initial,
                                   params=PARAMS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    camp = make(args.root, n_pool=args.pool, seed=args.seed)
    print(f"campaign with a {args.pool}-text pool in {camp.root} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
