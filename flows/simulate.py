"""Replay a labeled dataset: strategies × seeds → learning curves.

Each arm (a strategy with its consensus method) × seed is a Prefect subflow that
runs the same ``plan_round`` as a campaign round, with simulated annotators
answering from the dataset's not-yet-collected annotations. Every finished round
is checkpointed, so an interrupted simulation resumes where it stopped. The protocol (arms,
presets, their checks) is tasks/simulation_protocol.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow

from crowdloop.flows import compute, steps
from crowdloop.flows.plan import Stopwatch, mc_dropout_passes, plan_round
from crowdloop.tasks import (annotator_watch, annotators, metrics, progress, report, round_data,
                             signal, simulation_store, stopping, track)
from crowdloop.tasks import config as config_mod
from crowdloop.tasks.simulation_protocol import RANDOM, Arm, Preset, arm_config, run_settings
from crowdloop.tasks.train import TrainingSet, train_and_predict

log = logging.getLogger("crowdloop")


# The round metrics a simulation keeps, one row per arm × seed × round (NaN where a round has none).
ROW_METRICS = ("annotations", "test_accuracy", "test_macro_f1", "test_balanced_accuracy", "consensus_accuracy",
               "mean_consensus_quality", "oos_accuracy", "oos_balanced_accuracy", "oos_balanced_accuracy_se",
               "chance_balanced_accuracy", "log_loss_gain", "signal", "ranking_signal", "stop", "unroutable",
               "krippendorff_alpha", "unanimous_share", "flagged_annotators")


@flow(name="simulate-arm", flow_run_name="{arm.name}-seed{seed}")
def arm_flow(out_dir: str, base: config_mod.Config, preset: Preset, arm: Arm, seed: int,
             cache_dir: str) -> pd.DataFrame:
    """All rounds of one arm × seed, embeddings from ``cache_dir``; returns its rows of the
    learning-curve table."""
    replay = simulation_store.read_replay(Path(out_dir))
    backend = steps.simulation_backend(base.model, cache_dir)
    cfg = arm_config(base, preset, arm, seed=seed, classes=replay.classes)
    folder = Path(out_dir) / "checkpoints" / f"{arm.name}-seed{seed}"
    saved = simulation_store.read_checkpoint(folder)
    bad = (preset.bad_annotator or annotators.busiest(replay.uncollected)) if preset.goes_bad else None
    previous_annotators = None  # resumed: the first round after it reports no quality change
    if saved is None:
        rows, collected, previous = [], replay.initial.assign(round=0), None
    else:
        rows, collected, previous = saved[0].to_dict("records"), saved[1], saved[2]
        if rows:
            log.info("%s seed %d: resuming after round %d", arm.name, seed, rows[-1]["round"])

    def train(training: TrainingSet):
        return train_and_predict(backend, training, n_classes=len(cfg.classes), folds=cfg.predict.folds, seed=seed,
                                 mc_passes=mc_dropout_passes(cfg), chunk_size=cfg.predict.chunk_size)[0]

    for number in progress.track(range(len(rows) + 1, preset.rounds + 1), f"{arm.name} seed {seed}", unit="round",
                                 total=preset.rounds, done=len(rows)):
        start = time.perf_counter()
        data = round_data.build(replay.examples, collected, classes=cfg.classes)
        # Routing draws from the annotators who hold an answer (examples with none left are
        # not picked); ``preset.answered_by`` says whether the routed one answers.
        spend = stopping.spend_so_far(collected, cfg.budget)
        # One line a round instead of one a step: the steps log at debug level.
        plan = plan_round(data, previous, cfg, number=number, train=train, clock=Stopwatch(level=logging.DEBUG),
                          holders=annotators.holders(replay.uncollected, collected), spend=spend,
                          previous_signal=signal.was_present(rows), previous_annotators=previous_annotators)
        report = metrics.round_report(data, plan, collected, None, rows, cfg)
        asked = plan.batch if preset.answered_by == "routed" else plan.batch.assign(suggested_annotator=None)
        flagged = annotator_watch.flagged_ids(plan.agreed.annotators)
        # seed, not the round: each arm of a seed hears the same annotator for the same example
        answers = annotators.simulate_answers(asked, replay.uncollected, collected, seed=seed, excluded=flagged)
        turned = bad is not None and number >= preset.goes_bad  # bad_answers counts only the random ones
        if turned:
            answers = annotators.at_random(answers, bad, classes=cfg.classes, seed=seed)
        collected = pd.concat([collected, answers.assign(round=number)], ignore_index=True)
        previous_annotators = plan.agreed.annotators
        previous = round_data.probs_frame(data, plan.predictions.pred_probs, plan.predictions.pred_probs_unlabeled)
        rows.append({"strategy": arm.name, "seed": seed, "round": number,
                     **{k: report.get(k, np.nan) for k in ROW_METRICS},
                     "cost": spend.money, "strategy_used": plan.strategy,
                     "bad_answers": int((answers["annotator_id"] == bad).sum()) if turned else 0,
                     "flagged": " ".join(sorted(flagged)),
                     "seconds": time.perf_counter() - start})
        simulation_store.write_checkpoint(folder, rows=pd.DataFrame(rows), annotations=collected,
                                          pred_probs=previous)
        log.info("%s seed %d round %d/%d: %d annotations, %s accuracy %.3f (%.1f s)", arm.name, seed, number,
                 preset.rounds, report["annotations"], preset.evaluate, rows[-1]["test_accuracy"], rows[-1]["seconds"])
    # A folder that holds more rounds than asked for (an earlier, longer run): the first ones.
    return pd.DataFrame([row for row in rows if row["round"] <= preset.rounds])


@flow(name="crowdloop-simulate")
def simulate_flow(out_dir: str, preset: Preset, seeds: list[int], base: config_mod.Config, title: str,
                  target: float = 0.9, metric: str = report.DEFAULT_METRIC, shared_cache: str | None = None) -> dict:
    """Every arm × seed of ``preset`` on the replay saved in ``out_dir`` (simulation_store.prepare);
    writes curves.csv, learning_curve.png and summary.txt there and logs them to MLflow.
    ``metric`` is what the summary's annotations-to-``target`` and ROI read. ``shared_cache``: the
    embeddings cache folder (``--embedding-cache``; None: out_dir/.cache)."""
    out = Path(out_dir)
    cache_dir = str(simulation_store.cache_dir(out, shared_cache))
    backend_name = steps.embed_texts(out_dir, base, cache_dir)
    curves = pd.concat(_run_arms(out_dir, base, preset, seeds, one_at_a_time_here=backend_name != "head",
                                 cache_dir=cache_dir), ignore_index=True)
    at = sorted({1, min(5, preset.rounds), min(10, preset.rounds), preset.rounds})
    baseline = next((name for name in (RANDOM.name, f"{RANDOM.name}+{RANDOM.consensus}")
                     if name in set(curves["strategy"])), None)
    table = report.summary(curves, at_rounds=at, target=target, baseline=baseline, metric=metric)
    figure = report.plot(curves, title=title)
    columns = [*report.CURVE_COLUMNS, "oos_balanced_accuracy", "chance_balanced_accuracy", "signal", "ranking_signal",
               "krippendorff_alpha", "unanimous_share", "flagged_annotators", "flagged", "bad_answers", "strategy_used",
               "stop", "seconds"]
    text = report.summary_text(table, metric=metric, target=target)
    paths = simulation_store.write_simulation(out, curves=curves.reindex(columns=columns), figure=figure,
                                              summary=text)
    # What the curves depend on (the same description settings.json holds), then what this call ran.
    params = {**run_settings(base, preset), "rounds": preset.rounds, "arms": [a.name for a in preset.arms],
              "seeds": list(seeds), "backend_used": backend_name, "title": title, "metric": metric}
    run_id = track.log_simulation(out, title, params=params, curves=curves, artifacts=paths)
    return {"curves": curves, "summary": table, "paths": paths, "run_id": run_id}


def _run_arms(out_dir: str, base: config_mod.Config, preset: Preset, seeds: list[int], *,
              one_at_a_time_here: bool, cache_dir: str) -> list[pd.DataFrame]:
    """Every arm × seed's rows, in arm × seed order, run where ``base.compute`` says (flows/compute.py).
    ``one_at_a_time_here``: the fine-tune backend's arms share this machine's GPU, so they run one after
    another unless a Dask cluster is named."""
    jobs = [(arm, seed) for arm in preset.arms for seed in seeds]
    runner = compute.process_runner(base.compute, jobs=1 if one_at_a_time_here else len(jobs))
    names = [f"{arm.name}-seed{seed}" for arm, seed in jobs]
    calls = [{"out_dir": out_dir, "base": base, "preset": preset, "arm": arm, "seed": seed, "cache_dir": cache_dir}
             for arm, seed in jobs]
    with progress.bar(len(jobs), "simulation: arms × seeds", unit="run", say=log.info) as bar:
        def done(i: int) -> None:
            bar.note(f"{names[i]} done")
            bar.update()

        return compute.run_all(runner, _arm, calls, names=names, on_done=done)


def _arm(**kwargs) -> pd.DataFrame:
    """:func:`arm_flow`, shipped to a worker by name: a Prefect flow object would be pickled by value,
    without the module names its parameters' annotations need."""
    return arm_flow(**kwargs)
