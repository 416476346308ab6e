"""A million-text pool: embedding throughput, two rounds, and score + select on their predictions.

    python benchmarks/scale.py [--pool 1000000] [--sample 2000] [--work DIR] [--out benchmarks/out/scale.json]

What it measures, each in a process of its own (wall time, and peak resident memory from
``/usr/bin/time``'s maximum RSS or ``getrusage``), on a campaign from benchmarks/pool_campaign.py:

1. ``throughput``: all-MiniLM-L6-v2 (the default encoder) embeds ``--sample`` pool texts
   that are not cached: texts/s, and what that makes for the whole pool (a first round).
2. ``fill``: the labeled and test texts are embedded by MiniLM for real; every other pool
   text gets a **synthetic embedding** (a random unit vector of MiniLM's 384 dimensions)
   stored under its real cache key, so the rounds below find every embedding cached
   without an hour of encoding. The classifier therefore learns from real embeddings and
   predicts a pool of random ones: timings and memory are those of real sizes.
3. ``round 1`` and ``round 2``: ``crowdloop round`` against a running Prefect server
   (``PREFECT_API_URL``), embeddings cached; between them the batch of round 1 is answered
   (gold labels) and ingested, so round 2 trains again and predicts the whole pool again.
4. ``score-select``: a fresh process re-plans round 2 from the campaign with round 2's
   stored predictions (memory-mapped, nothing trained) and times the score and select
   steps; it checks that the batch is round 2's.

Never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import ENV, prefect_server  # noqa: E402  (the same server start and environment)

BIN = Path(sys.executable).parent
WARM_UP = 64  # texts the throughput phase encodes before it starts the clock


def measured(args: list[str], env: dict | None = None) -> dict:
    """Run ``args``; its wall seconds, CPU seconds (user + system, its children included) and peak
    RSS (MB, the largest of its processes), from /usr/bin/time; and the load average meanwhile."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", stats.name, "-f", "%M %U %S", *args], capture_output=True,
                              text=True, env={**os.environ, **ENV, **(env or {})})
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
        peak_kb, user, system = stats.read().strip().splitlines()[-1].split()
    return {"seconds": round(seconds, 1), "cpu_s": round(float(user) + float(system), 1),
            "peak_rss_mb": round(int(peak_kb) / 1024), "load_1min": os.getloadavg()[0], "stdout": proc.stdout}


def phase_throughput(root: Path, sample: int) -> dict:
    """MiniLM on ``sample`` uncached pool texts: texts/s (in-memory cache, so nothing is reused)."""
    from crowdloop.tasks import config, models, store

    cfg = config.load(store.Campaign(root).params_file)
    texts = store.read_examples(store.Campaign(root)).query("split == 'pool'")["text"]
    texts = texts.sample(sample, random_state=0).tolist()
    backend = models.load_backend(cfg.model)
    backend.prepare(texts[:WARM_UP])  # warm-up, not counted
    start, cpu = time.perf_counter(), time.process_time()
    backend.prepare(texts[WARM_UP:])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = (len(texts) - WARM_UP) / seconds
    return {"texts": len(texts) - WARM_UP, "seconds": round(seconds, 1), "texts_per_s": round(rate, 1),
            "cpu_s": round(cpu, 1), "torch_threads": _torch_threads(), "load_1min": os.getloadavg()[0]}


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def phase_fill(root: Path, seed: int = 0) -> dict:
    """Real embeddings for the labeled and test texts, synthetic ones (random unit vectors) for the rest."""
    from crowdloop.tasks import config, embedding_cache, models, store
    from crowdloop.tasks.models import encoder
    from crowdloop.tasks.models.base import embedding_keys, model_key, resolve_model_name

    camp = store.Campaign(root)
    cfg = config.load(camp.params_file)
    examples = store.read_examples(camp)
    labeled = set(store.read_annotations(camp)["example_id"])
    real = examples[(examples["split"] == "test") | examples["example_id"].isin(labeled)]["text"].tolist()
    cache = embedding_cache.open_cache(camp.cache, model_key(resolve_model_name(cfg.model.name)))
    backend = models.load_backend(cfg.model, embedding_cache=cache)
    start = time.perf_counter()
    backend.prepare(real)
    texts = examples["text"].tolist()
    keys = embedding_keys(texts, max_length=cfg.model.max_length, pooling=cfg.model.head.pooling)
    missing = keys[cache.find(keys) < 0]
    rng = np.random.default_rng(seed)
    for begin in range(0, len(missing), encoder.STORE_EVERY):
        part = missing[begin:begin + encoder.STORE_EVERY]
        vectors = rng.standard_normal((len(part), backend.dim), dtype=np.float32)
        cache.add(part, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return {"real": len(real), "synthetic": len(missing), "seconds": round(time.perf_counter() - start, 1)}


def phase_score_select(root: Path) -> dict:
    """Re-plan round 2 from its stored predictions; the seconds of score and select, peak RSS."""
    import pandas as pd

    from crowdloop.flows.plan import mc_dropout_passes, plan_round
    from crowdloop.tasks import config, round_data, signal, stopping, store, train

    camp = store.Campaign(root)
    cfg = config.load(camp.params_file)
    annotations = store.read_annotations(camp)
    data = round_data.build(store.read_examples(camp), round_data.in_force(annotations, on_change=cfg.ingest.on_change),
                            classes=cfg.classes)
    history = [store.read_round_metrics(camp, 1)]
    settings = train.training_settings(cfg, mc_dropout_passes(cfg))
    loaded_mb = _rss_mb()

    def stored(training):
        return train.load_predictions(camp.cache, train.training_key(training, settings=settings))

    clock = _cpu_stopwatch()
    plan = plan_round(data, store.read_pred_probs(camp, 1), cfg, number=2, train=stored, clock=clock,
                      spend=stopping.spend_so_far(annotations, cfg.budget), previous_signal=signal.was_present(history))
    same = plan.batch.loc[:, ["example_id", "suggested_annotator"]].reset_index(drop=True).equals(
        store.read_batch(camp, 2).loc[:, ["example_id", "suggested_annotator"]].astype(object))
    return {"pool": len(data.pool_ids), "classes": len(cfg.classes), "strategy": plan.strategy,
            "score_s": round(clock.seconds["score"], 2), "select_s": round(clock.seconds["select"], 2),
            "score_plus_select_s": round(clock.seconds["score"] + clock.seconds["select"], 2),
            "score_plus_select_cpu_s": round(clock.cpu["score"] + clock.cpu["select"], 2),
            "load_1min": os.getloadavg()[0],
            "rss_after_loading_mb": loaded_mb, "peak_rss_mb": _rss_mb(), "same_batch_as_round_2": bool(same),
            "batch": len(plan.batch), "pandas": pd.__version__}


def _cpu_stopwatch():
    """flows.plan.Stopwatch that also keeps each step's CPU seconds (this process, every thread)."""
    from contextlib import contextmanager

    from crowdloop.flows.plan import Stopwatch

    class CpuStopwatch(Stopwatch):
        def __init__(self):
            super().__init__()
            self.cpu: dict[str, float] = {}

        @contextmanager
        def __call__(self, name: str):
            start = time.process_time()
            with super().__call__(name):
                yield
            self.cpu[name] = time.process_time() - start

    return CpuStopwatch()


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def answer_batch(root: Path, number: int, out: Path) -> Path:
    """Round ``number``'s batch answered with each example's gold label, as an answer file."""
    from crowdloop.tasks import store

    camp = store.Campaign(root)
    batch = store.read_batch(camp, number)
    gold = store.read_examples(camp).set_index("example_id")["gold"]
    answers = batch.assign(label=gold.loc[batch["example_id"]].to_numpy(), annotator_id=batch["suggested_annotator"])
    answers.loc[:, ["example_id", "annotator_id", "label"]].to_csv(out, index=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2000,
                        help="pool texts MiniLM embeds for the throughput (the first 64 warm it up, uncounted)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the campaign (default: a new temp one)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/scale.json"))
    parser.add_argument("--phase", choices=["throughput", "fill", "score-select"], help=argparse.SUPPRESS)
    parser.add_argument("--campaign", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not WARM_UP < args.sample <= args.pool:  # else a phase fails after minutes, or divides by zero
        parser.error(f"--sample is {args.sample}: it must be more than {WARM_UP} (the first {WARM_UP} texts warm the "
                     f"encoder up) and at most --pool ({args.pool})")
    if args.phase:  # a measured child process: one JSON line
        phases = {"throughput": lambda: phase_throughput(args.campaign, args.sample),
                  "fill": lambda: phase_fill(args.campaign), "score-select": lambda: phase_score_select(args.campaign)}
        print(json.dumps(phases[args.phase]()))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="crowdloop-scale-"))
    root = work / "campaign"
    if root.exists():  # a campaign made before is reused, but only one that has run no round
        from crowdloop.tasks import store

        done = store.completed_rounds(store.Campaign(root))
        if done:  # its next rounds are not rounds 1 and 2: each result would be filed under the wrong round
            parser.error(f"{root} has run round {done[-1]} already; this benchmark measures rounds 1 and 2 of a "
                         "campaign: pass a --work folder without one (or a new one)")
    results: dict = {"pool": args.pool}
    me = [sys.executable, str(Path(__file__).resolve()), "--campaign", str(root), "--sample", str(args.sample)]

    def step(name: str, run) -> dict:
        print(f"{name} ...", flush=True)
        results[name] = run()
        print(f"  {json.dumps(results[name])}", flush=True)
        return results[name]

    if not root.exists():
        step("campaign", lambda: measured([sys.executable, str(Path(__file__).with_name("pool_campaign.py")),
                                           str(root), "--pool", str(args.pool)]) | {"stdout": None})
    step("throughput", lambda: _child(me, "throughput"))
    results["throughput"]["whole_pool_h"] = round(args.pool / results["throughput"]["texts_per_s"] / 3600, 2)
    step("fill", lambda: _child(me, "fill"))
    server, api = prefect_server(work / "prefect-server")
    try:
        env = {"PREFECT_HOME": str(work / "prefect-home"), "PREFECT_API_URL": api}
        crowdloop = [str(BIN / "crowdloop"), "-C", str(root)]
        step("round 1", lambda: _round(crowdloop, env, root, 1))
        answers = answer_batch(root, 1, work / "answers-1.csv")
        step("ingest", lambda: measured([*crowdloop, "ingest", str(answers)], env) | {"stdout": None})
        step("round 2", lambda: _round(crowdloop, env, root, 2))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    step("score-select", lambda: _child(me, "score-select"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out} (campaign in {root})")


def _child(me: list[str], phase: str) -> dict:
    run = measured([*me, "--phase", phase])
    return json.loads(run["stdout"].strip().splitlines()[-1]) | {"wall_s": run["seconds"], "cpu_s": run["cpu_s"],
                                                                 "process_peak_rss_mb": run["peak_rss_mb"]}


def _round(crowdloop: list[str], env: dict, root: Path, number: int) -> dict:
    run = measured([*crowdloop, "round"], env)
    metrics = json.loads((root / "data" / "rounds" / f"{number:03d}" / "metrics.json").read_text())
    steps = {k[len("seconds_"):]: v for k, v in metrics.items() if k.startswith("seconds_")}
    line = re.sub(r"\s+", " ", run["stdout"].strip().splitlines()[-1])
    return {k: run[k] for k in ("seconds", "cpu_s", "peak_rss_mb", "load_1min")} | {"steps_s": steps, "printed": line}


if __name__ == "__main__":
    main()
