"""What one writer at a time costs a round: the campaign lock, the journal and recovery check.

    python benchmarks/lock_cost.py [--repeats 5]

Builds the demo campaign in a temporary folder and runs round 1 once (this trains).
Then, in one process, alternately: ``crowdloop rollback 0`` (untimed) and a cached
re-run of round 1 (``crowdloop.run_round``, timed), once as shipped and once with
``recovery.writing`` replaced by a block that does nothing (no lock, no journal, no
recovery). Prints the medians and their ratio, and the cost of ``recovery.writing``
alone around an empty block. Never part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

for key, value in {"DO_NOT_TRACK": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
                   "PREFECT_LOGGING_LEVEL": "WARNING"}.items():
    os.environ.setdefault(key, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import crowdloop
    from crowdloop.tasks import recovery

    shipped = recovery.writing

    @contextlib.contextmanager
    def unlocked(campaign, command, **facts):
        yield

    with tempfile.TemporaryDirectory() as tmp:
        camp = crowdloop.init_demo(Path(tmp) / "demo")
        crowdloop.run_round(camp, simulate=True)  # trains; the re-runs below come from its cache
        seconds = {"locked": [], "unlocked": []}
        for _ in range(args.repeats):
            for name, writing in (("locked", shipped), ("unlocked", unlocked)):
                crowdloop.rollback(camp, 0)
                recovery.writing = writing
                start = time.perf_counter()
                crowdloop.run_round(camp, simulate=True)
                seconds[name].append(time.perf_counter() - start)
                recovery.writing = shipped
        empty = []
        for _ in range(20):
            start = time.perf_counter()
            with shipped(camp, "benchmark"):
                pass
            empty.append(time.perf_counter() - start)
    locked, unlocked_ = (statistics.median(seconds[k]) for k in ("locked", "unlocked"))
    print(f"cached round, medians of {args.repeats}: with the lock {locked:.2f} s, without {unlocked_:.2f} s, "
          f"ratio {locked / unlocked_:.3f}")
    print(f"recovery.writing around an empty block (lock, recovery check, journal): "
          f"{statistics.median(empty) * 1000:.0f} ms (median of 20)")
    print("all runs:", {k: [round(v, 2) for v in vs] for k, vs in seconds.items()})


if __name__ == "__main__":
    main()
