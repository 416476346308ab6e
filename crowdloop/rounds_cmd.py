"""What `crowdloop round` (and the rounds of `crowdloop demo`) print: one line a round, as each ends."""

from __future__ import annotations

import contextlib
from pathlib import Path

from crowdloop.tasks import track_process
from crowdloop.tasks import wording


def run(root: Path, count: int, *, simulate: bool, force: bool, helper: bool) -> int | None:
    """Run and print up to ``count`` rounds; the last one's number. ``helper``: MLflow is imported
    and called in a second process that starts now, so its imports overlap the round's own (about
    3 s of a cached re-run on a slow machine)."""
    with track_process.running() if helper else contextlib.nullcontext():
        return _print(root, count, simulate=simulate, force=force)


def _print(root: Path, count: int, *, simulate: bool, force: bool) -> int | None:
    from crowdloop import api

    result = None
    for result in api.run_rounds(root, count, simulate=simulate, force=force):
        m = result.metrics
        print(round_line(result.round, m, result.seconds), flush=True)
        if m.get("unroutable"):
            print(f"  {wording.count(m['unroutable'], 'pick')} had no eligible annotator: "
                  f"data/rounds/{result.round:03d}/unroutable.csv", flush=True)
        if m.get("stop"):
            then = "--force: the rounds asked for run on" if force else "no further rounds (--force runs them anyway)"
            print(f"  stopping rule: {m['stop_reason']}; {then}", flush=True)
    return None if result is None else result.round


def round_line(number: int, m: dict, seconds: dict[str, float]) -> str:
    """What `crowdloop round` prints for round ``number`` with metrics ``m`` and step times ``seconds``."""
    accuracy = m.get("test_accuracy")
    unscored = ("nothing labeled yet, no model to score" if m.get("labeled_examples") == 0 else
                "labels of one class so far, no model to score" if m.get("model_trained") == 0 else
                "no test split to score")
    scored = (f"test accuracy {accuracy:.3f}, macro-F1 {m['test_macro_f1']:.3f}"
              if accuracy is not None and accuracy == accuracy else unscored)  # NaN: none
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
    return (f"round {number}: {scored}, {m['annotations']} annotations, batch of {m['batch_size']} -> "
            f"data/rounds/{number:03d}/batch.csv  [{steps}]")
