"""The decision part of a round, shared by campaign rounds and simulations.

consensus → train + predict → score → select: :func:`plan_round` takes the
round's data and returns a :class:`Plan` (consensus, predictions, scores, the
batch). It reads and writes nothing; ``flows/round.py`` stores, tracks and
versions what it decided, ``flows/simulate.py`` replays annotators against it.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from prefect import task

from crowdloop.tasks import consensus, dataset, score, select, stopping
from crowdloop.tasks import config as config_mod
from crowdloop.tasks.train import Predictions

log = logging.getLogger("crowdloop")


@contextmanager
def timed(name: str, seconds: dict, *, level: int = logging.INFO):
    """Log the start and end of step ``name`` and record its wall seconds in ``seconds``."""
    log.log(level, "%s ...", name)
    start = time.perf_counter()
    yield
    seconds[name] = time.perf_counter() - start
    log.log(level, "%s done in %.1f s", name, seconds[name])


@task(name="consensus")
def consensus_task(data: dataset.RoundData, previous: pd.DataFrame | None, cfg: config_mod.Config):
    wide = consensus.to_wide(data.annotations, example_ids=data.labeled_ids)
    pred_probs = None
    if previous is not None and set(data.labeled_ids) <= set(previous.index):
        pred_probs = previous.loc[data.labeled_ids].to_numpy()
    result = consensus.consensus(
        wide, pred_probs, method=cfg.consensus.method, n_classes=len(cfg.classes),
        calibrate_probs=cfg.consensus.calibrate_probs, crowdlab_label=cfg.consensus.crowdlab_label, seed=cfg.seed,
    )
    return wide, result


@task(name="score")
def score_task(strategy: str, pool: score.Pool, seed: int):
    return score.score(strategy, pool, seed=seed)


@task(name="select")
def select_task(scores: pd.Series, annotations: pd.DataFrame, quality: pd.Series, cfg: config_mod.Config, *,
                batch_size: int, routing: select.Routing, diversity: select.Diversity | None,
                money_left: float | None):
    return select.select_batch(
        scores, annotations, quality, batch_size=batch_size,
        max_annotations_per_example=cfg.select.max_annotations_per_example,
        routing=routing, diversity=diversity, money_left=money_left,
    )


@dataclass(frozen=True)
class Plan:
    """What a round decided: consensus, predictions and the batch to ask for.

    ``wide`` is labels_multiannotator (N, M); ``scores`` a Series example_id -> score
    over labelled and unlabelled pool examples; ``batch`` the rows of batch.csv;
    ``unroutable`` picks nobody could be asked about; ``duplicates`` picks skipped
    as near-duplicates; ``strategy`` the strategy that actually scored (cold start or not).
    """

    wide: pd.DataFrame
    agreed: consensus.Consensus
    predictions: Predictions
    scores: pd.Series
    batch: pd.DataFrame
    unroutable: list
    duplicates: list = field(default_factory=list)
    strategy: str = ""


def plan_round(data: dataset.RoundData, previous: pd.DataFrame | None, cfg: config_mod.Config, *,
               number: int, train, seconds: dict, orchestrated: bool = True,
               holders: dict | None = None, spend: stopping.Spend | None = None) -> Plan:
    """consensus -> train + predict -> score -> select, shared by campaigns and simulations.

    ``train(texts_labeled, labels, texts_unlabeled, texts_test, weights) -> Predictions``,
    ``weights`` from :func:`sample_weights` (None: equal).
    With ``orchestrated=False`` the steps run as plain functions (no Prefect task
    runs), which a simulation of hundreds of rounds needs to stay fast.
    ``holders`` (simulation): example_id -> annotators holding an answer; routing
    draws from them. ``spend``: what the budget has left caps the batch.
    """
    run = (lambda t: t) if orchestrated else (lambda t: t.fn)
    # A simulation reports one line a round instead of one a step.
    level = logging.INFO if orchestrated else logging.DEBUG
    with timed("consensus", seconds, level=level):
        wide, agreed = run(consensus_task)(data, previous, cfg)
    labels = agreed.examples.loc[data.labeled_ids, "consensus_label"].to_numpy().astype(int)
    weights = sample_weights(agreed, data.labeled_ids, cfg.model.sample_weights)

    with timed("train+predict", seconds, level=level):
        texts = data.texts
        t_l, t_u, t_t = (texts.loc[ids].tolist() for ids in (data.labeled_ids, data.unlabeled_ids, data.test_ids))
        predictions = train(t_l, labels, t_u, t_t, weights)

    spend = spend or stopping.Spend(annotations=len(data.annotations), money=0.0)
    batch_size = cfg.select.batch_size if spend.annotations_left is None else min(cfg.select.batch_size,
                                                                                  spend.annotations_left)
    with timed("score", seconds, level=level):
        pool = score.make_pool(wide, predictions, n_classes=len(cfg.classes), batch_size=batch_size)
        strategy = score.effective_strategy(cfg.score.strategy, pool, cold_start=cfg.score.cold_start)
        s_l, s_u = run(score_task)(strategy, pool, cfg.seed + number)
        ids = np.concatenate([data.labeled_ids, data.unlabeled_ids])
        scores = pd.Series(np.concatenate([s_l, s_u]), index=ids)

    with timed("select", seconds, level=level):
        quality = agreed.annotators.set_index("annotator_id")["annotator_quality"]
        routing = select.Routing(capacity=cfg.routing.capacity_per_annotator, costs=cfg.budget.annotator_costs,
                                 default_cost=cfg.budget.cost_per_annotation, holders=holders)
        diversity = None
        if predictions.embeddings_unlabeled is not None:
            vectors = pd.DataFrame(np.vstack([predictions.embeddings, predictions.embeddings_unlabeled]), index=ids)
            diversity = select.Diversity(vectors, covered=predictions.embeddings,
                                         duplicate_threshold=cfg.select.duplicate_threshold,
                                         kcenter_weight=cfg.select.kcenter_weight)
        selection = run(select_task)(scores, data.annotations, quality, cfg, batch_size=batch_size,
                                     routing=routing, diversity=diversity, money_left=spend.money_left)
        batch = selection.batch.assign(text=texts.loc[selection.batch["example_id"]].to_numpy(), label="")
        batch = batch.loc[:, ["example_id", "text", "suggested_annotator", "score", "cost", "label"]]
    if selection.unroutable:
        log.warning("%d examples had no eligible annotator left and were skipped: %s",
                    len(selection.unroutable), ", ".join(selection.unroutable[:10]))
    return Plan(wide, agreed, predictions, scores, batch, list(selection.unroutable),
                list(selection.duplicates), strategy)


def sample_weights(agreed: consensus.Consensus, ids, how: str) -> np.ndarray | None:
    """Training weight per labelled example: its consensus quality (``model.sample_weights:
    consensus_quality``), so a label the annotators and the model doubt counts less; None
    for ``none``. Quality is CROWDLAB's score, or the agreeing share under majority vote."""
    if how == "none" or len(ids) == 0:
        return None
    quality = agreed.examples.loc[ids, "consensus_quality"].to_numpy(dtype=float)
    if not np.isfinite(quality).all() or quality.sum() <= 0:
        log.warning("consensus quality unusable as training weights (non-finite or all 0); weighting equally")
        return None
    return np.clip(quality, 0.0, None)


def mc_dropout_passes(cfg: config_mod.Config) -> int:
    """MC-dropout passes the training step should run: only for ``bald`` (0 otherwise)."""
    return cfg.score.mc_dropout_passes if cfg.score.strategy == "bald" else 0


def plan_metrics(plan: Plan) -> dict:
    """What selection reports: picks without an eligible annotator, near-duplicates skipped, cost."""
    return {"unroutable": len(plan.unroutable), "near_duplicates": len(plan.duplicates),
            "batch_cost": float(plan.batch["cost"].sum())}


def round_report(data: dataset.RoundData, plan: Plan, stored: pd.DataFrame, answers: pd.DataFrame | None,
                 history: list[dict], cfg: config_mod.Config) -> dict:
    """Everything a round reports, for campaigns and simulations alike: :func:`round_metrics`,
    what selection did (:func:`plan_metrics`) and the stopping rule over ``history`` (the
    earlier rounds' metrics) with this round's batch counted as spent."""
    metrics = round_metrics(data, plan.agreed, plan.predictions, stored, plan.batch, answers)
    metrics.update(plan_metrics(plan))
    spend = stopping.spend_so_far(stored, cfg.budget, batch=plan.batch)
    metrics.update(stopping.stop_metrics([*history, metrics], spend, cfg.stopping))
    return metrics


def round_metrics(data, agreed, predictions, stored, batch, answers) -> dict:
    """The numbers a round reports (and MLflow logs); all floats or ints."""
    test = dataset.classification_metrics(predictions.test_probs, data.test_gold) if predictions.trained else {}
    metrics = {f"test_{k}": v for k, v in test.items()}
    metrics.update({
        "annotations": len(stored),
        "labelled_examples": len(data.labeled_ids),
        "annotators": int(stored["annotator_id"].nunique()),
        "mean_consensus_quality": float(agreed.examples["consensus_quality"].mean()),
        "batch_size": len(batch),
        "new_annotations": 0 if answers is None else len(answers),
    })
    labels = agreed.examples.loc[data.labeled_ids, "consensus_label"].to_numpy().astype(int)
    if predictions.trained and len(labels):
        metrics["oos_accuracy"] = float((predictions.pred_probs.argmax(axis=1) == labels).mean())
    gold = data.pool_gold.reindex(data.labeled_ids)
    known = gold.notna().to_numpy()
    if known.any():
        metrics["consensus_accuracy"] = float((labels[known] == gold.to_numpy()[known]).mean())
    return metrics
