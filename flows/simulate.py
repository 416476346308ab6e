"""Replay a labeled dataset: strategies × seeds → learning curves.

Each arm (a strategy with its consensus method) × seed is a Prefect subflow that
runs the same ``plan_round`` as a campaign round, with simulated annotators
answering from the dataset's not-yet-collected annotations. Every finished round
is checkpointed, so an interrupted simulation resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from prefect import flow

from crowdloop.flows import compute, steps
from crowdloop.flows.plan import Stopwatch, mc_dropout_passes, plan_round
from crowdloop.tasks import (annotator_watch, annotators, metrics, progress, replay_split, report, round_data,
                             signal, simulation_store, stopping, track)
from crowdloop.tasks import config as config_mod
from crowdloop.tasks.errors import ConfigError
from crowdloop.tasks.train import TrainingSet, train_and_predict

log = logging.getLogger("crowdloop")


@dataclass(frozen=True)
class Arm:
    name: str
    strategy: str
    consensus: str


@dataclass(frozen=True)
class Preset:
    """A simulation protocol: rounds × batch, the start, the limits, the evaluation split, the arms.

    ``test_size``: held out as the gold test split when the data has none. ``evaluate``:
    ``test`` (the gold test split) or ``validation`` (``validation_size`` of the pool,
    carved out, the test split left out: what defaults are chosen on).
    ``answered_by``: who answers a pick: "tutorial" = a random annotator already seen
    among those who hold an answer (the ActiveLab tutorial's protocol); "routed" = the
    annotator that routing chose (by estimated quality, within capacity) among them.
    Either way a flagged annotator (``routing.min_quality``) never answers.
    ``goes_bad``: from this round on, ``bad_annotator`` (None: the one who holds the most
    answers) answers at random (uniform over the classes, seeded): what
    ``routing.min_quality`` should catch.
    """

    rounds: int
    batch_size: int
    n_start: int
    labels_per_start: int
    max_annotations_per_example: int
    folds: int
    arms: tuple[Arm, ...]
    test_size: float | None = 0.25
    answered_by: str = "tutorial"
    evaluate: str = "test"
    validation_size: float = 0.2
    goes_bad: int | None = None
    bad_annotator: str | None = None


# The round metrics a simulation keeps, one row per arm × seed × round (NaN where a round has none).
ROW_METRICS = ("annotations", "test_accuracy", "test_macro_f1", "test_balanced_accuracy", "consensus_accuracy",
               "mean_consensus_quality", "oos_accuracy", "oos_balanced_accuracy", "oos_balanced_accuracy_se",
               "chance_balanced_accuracy", "log_loss_gain", "signal", "stop", "unroutable", "krippendorff_alpha",
               "unanimous_share", "flagged_annotators")

DEFAULT = Arm("auto", strategy="auto", consensus="crowdlab")  # params.yaml's default strategy
RANDOM = Arm("random", strategy="random", consensus="majority")


def arm(strategy: str, consensus: str | None = None) -> Arm:
    """The arm that runs ``strategy``: CROWDLAB consensus, except ``random`` (majority vote, as in
    the ActiveLab tutorial). A ``module:function`` arm is named ``module.function``. With a
    ``consensus`` method (the bake-off, ``--consensus``) the arm is named ``strategy+method``."""
    name = strategy.replace(":", ".")
    if consensus is not None:
        return Arm(f"{name}+{consensus}", strategy=strategy, consensus=consensus)
    if strategy == RANDOM.strategy:
        return RANDOM
    return Arm(name, strategy=strategy, consensus="crowdlab")


PRESETS = {
    # The cleanlab ActiveLab tutorial: 100 examples × 2 labels, 25 rounds × 25 annotations.
    "tutorial": Preset(rounds=25, batch_size=25, n_start=100, labels_per_start=2,
                       max_annotations_per_example=5, folds=3, arms=(DEFAULT, RANDOM)),
    # Sparse labels (used for RTE and the held-back sets): 100 items × 1 label, 20 rounds × 20.
    "rte": Preset(rounds=20, batch_size=20, n_start=100, labels_per_start=1,
                  max_annotations_per_example=5, folds=3, arms=(DEFAULT, RANDOM)),
}
# What `crowdloop simulate` flags may change in a preset (the rest stay the named bundle's).
PROTOCOL_FLAGS = ("rounds", "batch_size", "n_start", "labels_per_start", "max_annotations_per_example", "folds",
                  "test_size", "answered_by", "evaluate", "validation_size", "goes_bad", "bad_annotator")
# The least value of each whole-number field, and the flag that sets a field where it is not
# the field's name with dashes (for error messages).
_AT_LEAST = {"rounds": 1, "batch_size": 1, "n_start": 0, "labels_per_start": 1, "max_annotations_per_example": 1,
             "folds": 2}
_FLAG = {"n_start": "--start-size", "max_annotations_per_example": "--max-annotations"}
ANSWERED_BY = ("tutorial", "routed")  # Preset.answered_by: who answers a pick (see Preset)


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _fraction(value) -> bool:
    return isinstance(value, (float, np.floating)) and 0 < value < 1


def check_simulation(preset: Preset, *, seeds: int, target: float, metric: str) -> None:
    """Raise ConfigError, naming the flag, if ``preset`` with ``seeds`` seeds cannot be run as a
    simulation, or ``target`` is no value of ``metric`` (a share, 0 to 1)."""
    if not _whole(seeds) or seeds < 1:
        raise ConfigError(f"--seeds is {seeds!r}; run at least 1 seed per arm.")
    if not preset.arms:
        raise ConfigError("--strategies names no strategy; give one or more, comma-separated (e.g. auto,random), "
                          "or all.")
    names = [a.name for a in preset.arms]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"the arm {twice!r} is named twice; name each strategy and consensus method once.")
    if not 0 < target <= 1:
        raise ConfigError(f"--target is {target!r}; give a {metric} value above 0 and at most 1.")
    for field, low in _AT_LEAST.items():
        value = getattr(preset, field)
        if not _whole(value) or value < low:
            flag = _FLAG.get(field, "--" + field.replace("_", "-"))
            raise ConfigError(f"{flag} is {value!r}; it must be a whole number of at least {low}.")
    if preset.labels_per_start > preset.max_annotations_per_example:
        raise ConfigError(f"--labels-per-start {preset.labels_per_start} is more than --max-annotations "
                          f"{preset.max_annotations_per_example}; lower the one or raise the other.")
    test_size = preset.test_size  # from Python also a count of examples; the flag takes a fraction
    if not (test_size is None or _fraction(test_size) or _whole(test_size) and test_size >= 1):
        raise ConfigError(f"--test-size is {test_size!r}; give a fraction strictly between 0 and 1.")
    if not _fraction(preset.validation_size):
        raise ConfigError(f"--validation-size is {preset.validation_size!r}; give a fraction strictly between 0 and 1.")
    for field, allowed in {"evaluate": replay_split.EVALUATE, "answered_by": ANSWERED_BY}.items():
        if getattr(preset, field) not in allowed:
            raise ConfigError(f"--{field.replace('_', '-')} is {getattr(preset, field)!r}; use {' or '.join(allowed)}.")
    if preset.goes_bad is not None and (not _whole(preset.goes_bad) or preset.goes_bad < 1):
        raise ConfigError(f"--goes-bad is {preset.goes_bad!r}; name a round, 1 or later.")
    if preset.goes_bad is not None and preset.goes_bad > preset.rounds:
        raise ConfigError(f"--goes-bad {preset.goes_bad} is after the last round ({preset.rounds}): nobody would "
                          f"turn bad; name a round from 1 to {preset.rounds}.")
    if preset.bad_annotator is not None and preset.goes_bad is None:
        raise ConfigError("--bad-annotator is given without --goes-bad; say from which round they answer at random.")


def arm_config(base: config_mod.Config, preset: Preset, arm: Arm, *, seed: int,
               classes: Sequence[str]) -> config_mod.Config:
    """The round config one arm × seed runs with."""
    return dataclasses.replace(
        base, seed=seed, classes=tuple(classes),
        consensus=dataclasses.replace(base.consensus, method=arm.consensus),
        score=dataclasses.replace(base.score, strategy=arm.strategy),
        predict=dataclasses.replace(base.predict, folds=preset.folds),
        select=dataclasses.replace(base.select, batch_size=preset.batch_size,
                                   max_annotations_per_example=preset.max_annotations_per_example),
    )


# Config keys that cannot change what a simulated round decides (compute: where it runs; name: a
# campaign's MLflow experiment): settings.json leaves them out, so adding one keeps a run resumable.
UNUSED_SECTIONS = ("name", "compute", "simulate", "schedule", "tracking", "remote")


def run_settings(base: config_mod.Config, preset: Preset) -> dict:
    """What the finished rounds of a simulation depend on, for simulation_store.prepare: the
    preset (its rounds and arms aside: more rounds or another arm extend a run) and params."""
    protocol = {k: v for k, v in dataclasses.asdict(preset).items() if k not in ("rounds", "arms")}
    params = {k: v for k, v in dataclasses.asdict(base).items() if k not in UNUSED_SECTIONS}
    return {"preset": protocol, "params": params}


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
        answers = annotators.simulate_answers(asked, replay.uncollected, collected, seed=seed * 1000 + number,
                                              excluded=flagged)
        turned = bad is not None and number >= preset.goes_bad  # bad_answers counts only the random ones
        if turned:
            answers = annotators.at_random(answers, bad, classes=cfg.classes, seed=seed * 1000 + number)
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
    columns = [*report.CURVE_COLUMNS, "oos_balanced_accuracy", "chance_balanced_accuracy", "signal",
               "krippendorff_alpha", "unanimous_share", "flagged_annotators", "flagged", "bad_answers", "strategy_used",
               "stop", "seconds"]
    text = (f"metric: {metric} (the summary's annotations to {target:g} and ROI; accuracy, macro-F1 and "
            f"balanced accuracy are all in curves.csv)\n{table.to_string()}")
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
