"""One active-learning round: consensus → train → predict → score → select → (simulate) → record.

``round_flow`` is the Prefect flow; each step is a task. It runs against the
Prefect server named by ``PREFECT_API_URL`` or, without one, a temporary local
server. The round's data is written through ``store``, logged through ``track``
and committed through ``version``, in that order: a round that fails before the
commit leaves the campaign's committed state as it was, and running it again
reuses the cached training step.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, task

from crowdloop.flows.plan import mc_dropout_passes, plan_round, round_report, timed
from crowdloop.tasks import annotators, dataset, lineage, report, route, stopping, store, track, version
from crowdloop.tasks import config as config_mod
from crowdloop.tasks.model import resolve_backend
from crowdloop.tasks.train import Predictions, train_predict_task

log = logging.getLogger("crowdloop")
CODE_VERSION = "4"  # bump when train_and_predict's results change for the same inputs


@task(name="load-campaign")
def load_task(campaign_dir: str):
    campaign = store.open_campaign(campaign_dir)
    cfg = config_mod.load(campaign.params_file)
    examples = store.read_examples(campaign)
    annotations = store.read_annotations(campaign)
    rounds = store.completed_rounds(campaign)
    previous = store.read_pred_probs(campaign, rounds[-1]) if rounds else None
    return campaign, cfg, examples, annotations, rounds, previous


@task(name="simulate-annotators")
def simulate_task(batch: pd.DataFrame, pool: pd.DataFrame, collected: pd.DataFrame, seed: int):
    return annotators.simulate_answers(batch, pool, collected, seed=seed)


@task(name="save-round")
def save_task(campaign, number: int, outputs: dict, answers: pd.DataFrame | None) -> list[Path]:
    """Write the round; returns the annotation part files it added."""
    parts = []
    if answers is not None and len(answers):
        rows = answers.assign(round=number, source="simulated",
                              time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        parts.append(store.append_annotations(campaign, rows, source=f"round-{number:03d}-simulated"))
    store.write_round(campaign, number, **outputs)
    return parts


@task(name="track", retries=2, retry_delay_seconds=2)
def track_task(campaign, number: int, params: dict, metrics: dict, model_dir: str, *,
               uri: str | None = None, flow_run_id: str | None = None) -> str:
    folder = campaign.round_dir(number)
    artifacts = [folder / n for n in ("batch.csv", "annotators.csv", "consensus.parquet", "metrics.json")]
    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}  # not stop_reason
    curve = pd.DataFrame([store.read_round_metrics(campaign, n) | {"round": n}
                          for n in store.completed_rounds(campaign) if n <= number])
    figure = report.plot_campaign(curve, title=f"{campaign.name}: learning curve up to round {number}")
    run_id = track.log_round(campaign, number, params=params, metrics=numbers, artifacts=artifacts,
                             model_dir=Path(model_dir), figure=figure, uri=uri,
                             tags=lineage.run_tags(number, flow_run_id=flow_run_id))
    store.write_lineage(campaign, number, lineage.round_ids(run_id, flow_run_id=flow_run_id,
                                                            uri=track.tracking_uri(campaign, uri)))
    return run_id


@task(name="version")
def version_task(campaign, number: int, message: str) -> str:
    return version.commit(campaign, message, tag=version.ROUND_TAG.format(number))


@flow(name="crowdloop-round")
def round_flow(campaign_dir: str, simulate: bool = False, force: bool = False) -> dict:
    """Run the next round of the campaign at ``campaign_dir``; returns its metrics."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with timed("load", seconds):
        campaign, cfg, examples, stored, rounds, previous = load_task(campaign_dir)
        number = (rounds[-1] if rounds else 0) + 1
        _check_waiting(campaign, rounds, stored, simulate=simulate, force=force)
        _check_stopped(campaign, rounds, force=force)
        data = dataset.build_round_data(examples, stored, classes=cfg.classes)
    log.info("round %d: %d annotations on %d examples, %d unlabelled, %d gold test",
             number, len(stored), len(data.labeled_ids), len(data.unlabeled_ids), len(data.test_ids))

    exported = {}

    mc_passes = mc_dropout_passes(cfg)

    def train(t_l, labels, t_u, t_t, weights) -> Predictions:
        settings = {"model": cfg.model.__dict__ | {"backend": resolve_backend(cfg.model.backend)},
                    "folds": cfg.predict.folds, "seed": cfg.seed, "code": CODE_VERSION, "mc_passes": mc_passes}
        key = dataset.training_key(texts=t_l, labels=labels, eval_texts=t_t, unlabeled_texts=t_u,
                                   settings=settings, weights=weights)
        trainer = train_predict_task.with_options(result_storage=campaign.cache / "prefect")
        predictions, exported["model_dir"] = trainer(
            key, str(campaign.root), t_l, labels, t_u, t_t, model=cfg.model,
            n_classes=len(cfg.classes), folds=cfg.predict.folds, seed=cfg.seed, mc_passes=mc_passes,
            sample_weight=weights)
        return predictions

    simulator = store.read_simulator_answers(campaign) if simulate else None
    holders = None if simulator is None else annotators.holders(simulator, stored)
    plan = plan_round(data, previous, cfg, number=number, train=train, seconds=seconds, holders=holders,
                      spend=stopping.spend_so_far(stored, cfg.budget))
    agreed, predictions, batch = plan.agreed, plan.predictions, plan.batch
    model_dir = exported["model_dir"]

    answers = None
    if simulate:
        with timed("simulate", seconds):
            answers = simulate_task(batch, simulator, stored, cfg.seed + number)
            log.info("simulated annotators answered %d of %d requests", len(answers), len(batch))

    metrics = round_report(data, plan, stored, answers, [store.read_round_metrics(campaign, r) for r in rounds], cfg)
    if metrics["stop"]:
        log.info("stopping rule: %s", metrics["stop_reason"])
    metrics.update({f"seconds_{k.replace('+', '_')}": round(v, 3) for k, v in seconds.items()})
    pred_probs = pd.DataFrame(
        np.vstack([predictions.pred_probs, predictions.pred_probs_unlabeled]),
        index=pd.Index(np.concatenate([data.labeled_ids, data.unlabeled_ids]), name="example_id"),
        columns=list(cfg.classes),
    )
    outputs = {"batch": batch, "consensus": _consensus_table(agreed, cfg.classes),
               "annotators": agreed.annotators, "pred_probs": pred_probs, "metrics": metrics,
               "assignments": route.assignments(batch), "unroutable": plan.unroutable}
    parts: list[Path] = []
    run_id = None
    accuracy = metrics.get("test_accuracy", float("nan"))
    try:
        with timed("save", seconds):
            parts = save_task(campaign, number, outputs, answers)
        with timed("track", seconds):
            params = cfg.to_dict() | {"backend_used": predictions.backend, "consensus_method": agreed.method}
            run_id = track_task(campaign, number, params, metrics, model_dir, uri=cfg.tracking.uri,
                                flow_run_id=lineage.current_flow_run_id())
        with timed("version", seconds):
            version_task(campaign, number, f"Round {number}: asked for {len(batch)} annotations; "
                                           f"test accuracy {accuracy:.3f}")
    except BaseException:
        # Leave data/ as it was before the round; running it again reuses the
        # cached training step and redoes only what failed.
        store.discard_round(campaign, number, parts=parts)
        lineage.forget_run(campaign, run_id, uri=cfg.tracking.uri)
        log.error("round %d failed; data/ is back to its state before the round", number)
        raise
    # The round is committed: what follows must not undo it. A step that still fails after
    # its retries is reported; `crowdloop push` sends the data later.
    with timed("publish", seconds):
        problems = lineage.finish_round(campaign, number, run_id, accuracy, cfg)
    metrics["seconds_total"] = time.perf_counter() - started
    return {"round": number, "metrics": metrics, "seconds": seconds, "strategy": plan.strategy,
            "run_id": run_id, "problems": problems}


def _check_waiting(campaign, rounds: list[int], stored: pd.DataFrame, *, simulate: bool, force: bool) -> None:
    if simulate or force or not rounds:
        return
    last = rounds[-1]
    asked = len(store.read_batch(campaign, last))
    back = int((stored["round"] == last).sum())
    if asked and not back:
        raise store.CampaignError(
            f"round {last}'s batch ({asked} annotations, data/rounds/{last:03d}/batch.csv) has no "
            "answers yet: ingest them with `crowdloop ingest FILE`, or pass --force to run anyway."
        )


def _check_stopped(campaign, rounds: list[int], *, force: bool) -> None:
    """Scheduled or repeated rounds honour the stopping rule: refuse once it has fired, unless forced."""
    if force or not rounds:
        return
    last = store.read_round_metrics(campaign, rounds[-1])
    if last.get("stop"):
        raise store.CampaignError(
            f"the stopping rule fired in round {rounds[-1]} ({last.get('stop_reason', 'see metrics.json')}); "
            "raise the budget or stopping.rounds in params.yaml, or pass --force to run anyway."
        )


def _consensus_table(agreed, classes) -> pd.DataFrame:
    table = agreed.examples.copy()
    table["consensus_label"] = [classes[i] for i in table["consensus_label"]]
    table.index.name = "example_id"
    return table
