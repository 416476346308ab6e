"""One active-learning round: load → gate → plan → (simulate) → record → publish.

``round_flow`` is the Prefect flow; its steps are the tasks of ``flows/steps.py``
and the pure planning of ``flows/plan.py``. It runs against the Prefect server
named by ``PREFECT_API_URL`` or, without one, a temporary local server. The round's
data is written through ``store``, logged through ``track`` and committed through
``version``, in that order: a round that fails before the commit leaves data/ as it
was, and running it again reuses the cached training step.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import flow

from crowdloop import console
from crowdloop.flows import compute, steps
from crowdloop.flows.plan import Plan, Stopwatch, mc_dropout_passes, plan_round, say_again
from crowdloop.tasks import (annotators, gate, lineage, metrics, plan_cache, record, recovery, round_data, signal,
                             stopping, store, train)

log = logging.getLogger("crowdloop")


@dataclass(frozen=True)
class RoundResult:
    """What a round did: its number, metrics, step seconds, the strategy that scored, the MLflow
    run, and what still failed after the commit (lineage, champion, push; [] when all went well)."""

    round: int
    metrics: dict
    seconds: dict
    strategy: str
    run_id: str
    problems: list[str]


@flow(name="crowdloop-round")
def round_flow(campaign_dir: str, simulate: bool = False, force: bool = False) -> RoundResult:
    """Run the next round of the campaign at ``campaign_dir``; ``simulate``: the campaign's
    simulated annotators answer its batch; ``force``: run even if the last batch has no answer
    or the stopping rule fired."""
    console.log_to_prefect()
    clock = Stopwatch()
    with recovery.writing(store.Campaign(Path(campaign_dir)), "round"):
        with clock("load"):
            loaded = steps.load(campaign_dir)
            gate.check_may_run(loaded.progress, simulate=simulate, force=force)
            counted = round_data.in_force(loaded.annotations, on_change=loaded.cfg.ingest.on_change)
            data = round_data.build(loaded.examples, counted, classes=loaded.cfg.classes)
        log.info("round %d: %d annotations on %d examples, %d unlabeled, %d gold test", loaded.number,
                 len(loaded.annotations), len(data.labeled_ids), len(data.unlabeled_ids), len(data.test_ids))
        simulator = store.read_simulator_answers(loaded.campaign) if simulate else None
        plan = _plan(loaded, data, None if simulator is None else annotators.holders(simulator, loaded.annotations),
                     clock)
        answers = None
        if simulate:
            with clock("simulate"):
                answers = steps.simulate_answers(plan.batch, simulator, loaded.annotations, loaded.cfg.seed)
            log.info("simulated annotators answered %d of %d requests", len(answers), len(plan.batch))
        report = metrics.round_report(data, plan, loaded.annotations, answers, loaded.history, loaded.cfg)
        if report["stop"]:
            log.info("stopping rule: %s", report["stop_reason"])
        report |= {f"seconds_{k.replace('+', '_')}": round(v, 3) for k, v in clock.seconds.items()}
        run_id = _record(loaded, data, plan, report, answers, clock)
        with clock("publish"):
            problems = _publish(loaded, run_id, report.get("test_accuracy", float("nan")))
        return RoundResult(loaded.number, report, clock.seconds, plan.strategy, run_id, problems)


def _plan(loaded: steps.Loaded, data: round_data.RoundData, holders: dict | None, clock: Stopwatch) -> Plan:
    """``plan_round`` for this round, or the plan an earlier run made from the same inputs and code
    (:mod:`crowdloop.tasks.plan_cache`): a re-run of an unchanged round imports neither cleanlab
    nor scikit-learn."""
    cfg, cache = loaded.cfg, loaded.campaign.cache
    options = {"number": loaded.number, "holders": holders,
               "spend": stopping.spend_so_far(loaded.annotations, cfg.budget),
               "previous_signal": signal.was_present(loaded.history), "previous_annotators": loaded.annotators}
    start = time.perf_counter()
    # the model by its files too (a folder saved again under the same name), and a bad model.name fails here
    key = plan_cache.key({"data": data, "previous": loaded.previous, "cfg": cfg, "mc_passes": mc_dropout_passes(cfg),
                          "encoder": train.encoder_key(cfg.model), **options})
    stored = _stored_plan(cache, key)
    if stored is not None:
        clock.seconds["plan"] = time.perf_counter() - start
        log.info("inputs and code unchanged since this round's plan was made: plan read back (.cache/plans/%s.pkl)",
                 key[:16])
        say_again(stored)
        return stored
    plan = plan_round(data, loaded.previous, cfg, clock=clock, **options,
                      train=steps.CampaignTrainer(loaded.campaign, cfg, mc_dropout_passes(cfg),
                                                  compute.fit_mapper(cfg.compute)))
    plan_cache.write(cache, key, dataclasses.replace(plan, predictions=None), plan.predictions.key)
    return plan


def _stored_plan(cache: Path, key: str) -> Plan | None:
    """The plan stored under ``key`` with its predictions read back from the prediction cache; None
    when there is none, or its predictions are gone (pruned)."""
    stored = plan_cache.read(cache, key)
    if stored is None or stored[1] is None:
        return None
    try:
        return dataclasses.replace(stored[0], predictions=train.load_predictions(cache, stored[1]))
    except FileNotFoundError:
        return None


def _record(loaded: steps.Loaded, data: round_data.RoundData, plan: Plan, report: dict,
            answers: pd.DataFrame | None, clock: Stopwatch) -> str:
    """save → track → version, all or nothing: a failure leaves data/ as it was before the round;
    running it again reuses the cached training step and redoes only what failed."""
    parts, run_id = [], None
    try:
        with clock("save"):
            parts = steps.save_round(loaded, data, plan, report, answers)
        with clock("track"):
            run_id = steps.log_round(loaded, plan, report, steps.current_flow_run_id())
        with clock("version"):
            steps.commit_round(loaded, report, parts)
    except BaseException:
        record.discard_round(loaded.campaign, loaded.number, parts=parts, run_id=run_id,
                             uri=loaded.cfg.tracking.uri)
        log.error("round %d failed; data/ is back to its state before the round", loaded.number)
        raise
    return run_id


def _publish(loaded: steps.Loaded, run_id: str, score: float) -> list[str]:
    """After the commit: lineage tags, champion, push. What still fails after its retries is
    reported, never undoes the committed round (`crowdloop push` sends the data later)."""
    problems = []
    try:
        registered = steps.publish_round(loaded, run_id, score)
        if registered is not None:
            log.info("round %d's model is the new champion: %s version %d", loaded.number,
                     lineage.campaign_name(loaded.campaign, loaded.cfg.name), registered)
    except Exception as err:
        problems.append(f"MLflow lineage tags or champion not recorded ({err})")
    if loaded.cfg.remote.url:
        try:
            steps.push(loaded.campaign, loaded.cfg.remote.url)
        except Exception as err:
            problems.append(f"data not pushed to {loaded.cfg.remote.url} ({err}); run `crowdloop push` later")
    for problem in problems:
        log.warning("round %d is committed, but %s", loaded.number, problem)
    return problems
