"""The decision part of a round, shared by campaign rounds and simulations.

consensus → train + predict → score → select: :func:`plan_round` takes the round's
data and returns a :class:`Plan` (consensus, predictions, scores, the batch). It is
a pure function of its inputs and the injected ``train`` step: it reads and writes
nothing, so ``flows/round.py`` and ``flows/simulate.py`` call it alike and then
record or replay what it decided.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from crowdloop.tasks import annotator_watch, consensus, round_data, scoring, select, signal, stopping
from crowdloop.tasks.config import Config
from crowdloop.tasks.train import Predictions, TrainingSet, sample_weights
from crowdloop.tasks.wording import count, word

log = logging.getLogger("crowdloop")


class Stopwatch:
    """Times named steps: ``with clock("score"): ...`` logs the start and end at ``level``
    and keeps the wall seconds in ``clock.seconds``."""

    def __init__(self, *, level: int = logging.INFO):
        self.seconds: dict[str, float] = {}
        self.level = level

    @contextmanager
    def __call__(self, name: str):
        log.log(self.level, "%s ...", name)
        start = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - start
        log.log(self.level, "%s done in %.1f s", name, self.seconds[name])


@dataclass(frozen=True)
class Plan:
    """What a round decided: consensus, predictions and the batch to ask for.

    ``wide`` is labels_multiannotator (N, M); ``scores`` a Series example_id -> score
    over labeled and unlabeled pool examples; ``batch`` the rows of batch.csv
    (schema.BATCH_COLUMNS); ``unroutable`` picks nobody could be asked about;
    ``duplicates`` picks skipped as near-duplicates; ``strategy`` the strategy that
    actually scored (cold start, or what ``auto`` chose); ``signal`` the model's signal
    metrics (:func:`crowdloop.tasks.signal.model_signal`; {} without a trained model);
    ``notes`` the (level, line) pairs it logged about what it decided (the signal and the
    ``auto`` rule, flagged annotators, picks nobody could take), which :func:`say_again`
    repeats for a stored plan read back.
    """

    wide: pd.DataFrame
    agreed: consensus.Consensus
    predictions: Predictions
    scores: pd.Series
    batch: pd.DataFrame
    unroutable: list
    duplicates: list = field(default_factory=list)
    strategy: str = ""
    signal: dict = field(default_factory=dict)
    notes: tuple = ()


def plan_round(data: round_data.RoundData, previous: pd.DataFrame | None, cfg: Config, *, number: int,
               train: Callable[[TrainingSet], Predictions], clock: Stopwatch, holders: dict | None = None,
               spend: stopping.Spend | None = None, previous_signal: bool | None = None,
               previous_annotators: pd.DataFrame | None = None) -> Plan:
    """consensus -> train + predict -> score -> select.

    ``previous``: the last round's pool probabilities (index example_id, a column per
    class name) or None. ``train``: the train + predict step (cached in a campaign,
    direct in a simulation). ``holders`` (simulation): example_id -> annotators holding
    an answer; routing draws from them. ``spend``: what the budget has left caps the batch.
    ``previous_signal``: whether the model behind ``previous`` carried signal (its round's
    ``signal`` metric; None: unknown). With ``consensus.require_signal`` a model without
    signal does not take part in the consensus: it would break ties toward the class it
    always predicts and weigh rare-class labels down. ``previous_annotators``: the last round's
    annotators.csv (None: none), for each annotator's quality change
    (:mod:`crowdloop.tasks.annotator_watch`, which also flags those routing skips).
    """
    notes: list[tuple[int, str]] = []
    say = functools.partial(_say, notes, clock.level)
    with clock("consensus"):
        wide = consensus.to_wide(data.annotations, example_ids=data.labeled_ids)
        agreed = _watched(agree(wide, data, previous, previous_signal, cfg, say), data, previous_annotators, cfg, say)

    with clock("train+predict"):
        labels = round_data.consensus_labels(data, agreed)
        predictions = train(TrainingSet(
            texts_labeled=data.texts_of(data.labeled_ids), labels=labels,
            texts_unlabeled=data.texts_of(data.unlabeled_ids), texts_test=data.texts_of(data.test_ids),
            sample_weight=sample_weights(agreed, data.labeled_ids, cfg.model.sample_weights, labels=labels,
                                         class_weight=cfg.model.class_weight)))

    measured = _signal(data, agreed, predictions, class_weighted=cfg.model.class_weight == "balanced")
    spend = spend or stopping.Spend(annotations=len(data.annotations), money=0.0)
    batch_size = spend.batch_limit(cfg.select.batch_size)
    with clock("score"):
        inputs = scoring.score_inputs(wide, predictions, n_classes=len(data.classes), batch_size=batch_size,
                                      model_signal=bool(measured.get("signal")) if measured else None)
        strategy = scoring.effective_strategy(cfg.score.strategy, inputs, cold_start=cfg.score.cold_start,
                                              signal=cfg.score.signal_strategy,
                                              no_signal=cfg.score.no_signal_strategy)
        rule = f"; score.strategy auto -> {strategy}" if cfg.score.strategy == scoring.AUTO else ""
        say(f"{signal.describe(measured)}{rule}")
        scores = round_data.pool_series(data, *scoring.score(strategy, inputs, seed=cfg.seed + number))

    with clock("select"):
        selection = select.select_batch(
            scores, data.annotations, agreed.annotators.set_index("annotator_id")["annotator_quality"],
            batch_size=batch_size, max_annotations_per_example=cfg.select.max_annotations_per_example,
            routing=select.Routing(capacity=cfg.routing.capacity_per_annotator, costs=cfg.budget.annotator_costs,
                                   default_cost=cfg.budget.cost_per_annotation, holders=holders,
                                   excluded=annotator_watch.flagged_ids(agreed.annotators)),
            diversity=_diversity(data, predictions, cfg), money_left=spend.money_left)
    if selection.unroutable:
        _say(notes, logging.WARNING, f"{count(len(selection.unroutable), 'example')} had no eligible annotator left "
                                     f"and {word(len(selection.unroutable), 'was', 'were')} skipped: "
                                     f"{', '.join(map(str, selection.unroutable[:10]))}")
    if selection.exhausted:
        _say(notes, logging.WARNING, f"the batch has {len(selection.picks)} of {batch_size} picks: every annotator "
                                     f"{_why_nobody(cfg, agreed, spend.money_left)}")
    elif selection.duplicates and len(selection.picks) < batch_size:
        skipped = len(selection.duplicates)
        _say(notes, logging.WARNING, f"the batch has {len(selection.picks)} of {batch_size} picks: "
                                     f"{count(skipped, 'example')} {word(skipped, 'was', 'were')} left out as "
                                     "near-duplicates of a pick (cosine above select.duplicate_threshold "
                                     f"{cfg.select.duplicate_threshold})")
    return Plan(wide, agreed, predictions, scores, round_data.batch_table(data, selection.picks),
                list(selection.unroutable), list(selection.duplicates), strategy, measured, tuple(notes))


def _why_nobody(cfg: Config, agreed: consensus.Consensus, money_left: float | None) -> str:
    """What can keep every annotator from another pick (route.Router.spent), the rules in force only."""
    reasons = [f"is flagged (below routing.min_quality {cfg.routing.min_quality:g})"
               ] if annotator_watch.flagged_ids(agreed.annotators) else []
    if cfg.routing.capacity_per_annotator is not None:
        reasons.append("is at routing.capacity_per_annotator")
    if money_left is not None:
        reasons.append("costs more than the money left")
    if len(reasons) < 2:
        return reasons[0] if reasons else "can take no more picks"
    return f"{', '.join(reasons[:-1])} or {reasons[-1]}"


def say_again(plan: Plan) -> None:
    """Log what ``plan`` logged about its decisions when it was made (a stored plan read back)."""
    for level, line in plan.notes:
        log.log(level, "%s", line)


def _say(notes: list, level: int, line: str) -> None:
    log.log(level, "%s", line)
    notes.append((level, line))


def agree(wide: pd.DataFrame, data: round_data.RoundData, previous: pd.DataFrame | None,
          previous_signal: bool | None, cfg: Config, say: Callable[[str], None] = log.info) -> consensus.Consensus:
    """The consensus of ``wide`` (consensus.to_wide of ``data``'s annotations) by
    ``consensus.method``, with the last round's probabilities where they may take part
    (:func:`trusted_previous`; ``plan_round``'s arguments of the same names)."""
    return consensus.consensus(
        wide, round_data.previous_probs(trusted_previous(previous, previous_signal, cfg, say), data),
        method=cfg.consensus.method, classes=data.classes, calibrate_probs=cfg.consensus.calibrate_probs,
        crowdlab_label=cfg.consensus.crowdlab_label, seed=cfg.seed)


def trusted_previous(previous: pd.DataFrame | None, previous_signal: bool | None, cfg: Config,
                     say: Callable[[str], None] = log.info) -> pd.DataFrame | None:
    """The last round's probabilities for CROWDLAB, or None (majority vote, ``say`` tells why) when
    that round trained no model (nothing labeled, or labels of one class: its probabilities are the
    uniform ones train writes then, which would only lower every annotator's CROWDLAB quality), or
    when ``consensus.require_signal`` is on and the model behind them carried no signal."""
    if previous is not None and trained_no_model(previous):
        say("the last round trained no model: the consensus is the majority vote")
        return None
    if cfg.consensus.require_signal and previous_signal is False and previous is not None:
        say("the last round's model carried no signal: the consensus is the majority vote "
            "(consensus.require_signal)")
        return None
    return previous


def trained_no_model(pred_probs: pd.DataFrame) -> bool:
    """Whether a round's probabilities (index example_id, one column per class name) are the uniform
    ones train writes when it trains no model (nothing labeled, or labels of one class)."""
    return bool(np.allclose(pred_probs.to_numpy(dtype=float), 1.0 / pred_probs.shape[1]))


def _watched(agreed: consensus.Consensus, data: round_data.RoundData, previous: pd.DataFrame | None, cfg: Config,
             say: Callable[[str], None]) -> consensus.Consensus:
    """``agreed`` with each annotator's quality change, recent quality and flag (annotator_watch)."""
    routing = cfg.routing
    annotators = annotator_watch.watch(agreed.annotators, agreed.label_quality, data.annotations, previous,
                                       min_quality=routing.min_quality, window=routing.quality_window,
                                       min_labels=routing.min_labels, lone_labels=agreed.method == "crowdlab",
                                       method=agreed.method)
    for row in annotators[annotators["flagged"]].itertuples():
        say(f"annotator {row.annotator_id} is flagged and gets no requests: {row.flag_reason}")
    return dataclasses.replace(agreed, annotators=annotators)


def mc_dropout_passes(cfg: Config) -> int:
    """MC-dropout passes the training step should run: only for ``bald`` (0 otherwise)."""
    return cfg.score.mc_dropout_passes if cfg.score.strategy == "bald" else 0


def _signal(data: round_data.RoundData, agreed: consensus.Consensus, predictions: Predictions, *,
            class_weighted: bool) -> dict:
    """The model's signal against the consensus labels ({} before a model is trained)."""
    if not predictions.trained or predictions.folds is None:
        return {}
    return signal.model_signal(predictions.pred_probs, round_data.consensus_labels(data, agreed), predictions.folds,
                               class_weighted=class_weighted)


def _diversity(data: round_data.RoundData, predictions: Predictions, cfg: Config) -> select.Diversity | None:
    """The embeddings select's diversity options read; None when both are off (a million-text
    pool's embeddings then stay on disk)."""
    off = cfg.select.duplicate_threshold is None and cfg.select.kcenter_weight == 0
    if predictions.embeddings_unlabeled is None or off:
        return None
    vectors = round_data.pool_frame(data, predictions.embeddings, predictions.embeddings_unlabeled)
    return select.Diversity(vectors, covered=predictions.embeddings, duplicate_threshold=cfg.select.duplicate_threshold,
                            kcenter_weight=cfg.select.kcenter_weight)
