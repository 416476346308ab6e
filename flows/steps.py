"""Every Prefect task of crowdloop's flows, each a thin wrapper around a function in ``tasks/``.

A task exists where Prefect adds something: the cached training step, retries for
steps that can fail for passing reasons (MLflow, the DVC remote, a commit), and a
state in the Prefect UI for each step that writes. The fast pure steps of a round
(consensus, score, select) run inside ``flows/plan.plan_round`` as plain calls, the
same in campaign rounds and simulations.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from crowdloop import console
from crowdloop.tasks import (annotators, config, embedding_cache, gate, inbox, journal, models, record,
                             simulation_store, store, track, train, version)
from crowdloop.tasks.errors import CrowdloopError
from crowdloop.tasks.models.base import model_key, resolve_model_name

log = logging.getLogger("crowdloop")
# Writes and remote calls are never served from a cache: each run does them.
WRITES = {"cache_policy": NO_CACHE}


@dataclass(frozen=True)
class Loaded:
    """A campaign as a round starts: its config, data and where it stands (``number`` = the next round)."""

    campaign: store.Campaign
    cfg: config.Config
    examples: pd.DataFrame
    annotations: pd.DataFrame
    progress: gate.Progress
    history: list[dict]
    previous: pd.DataFrame | None
    annotators: pd.DataFrame | None = None  # the last round's annotators.csv (quality, flags)

    @property
    def number(self) -> int:
        return (self.progress.round or 0) + 1


@contextlib.contextmanager
def without_heartbeats():
    """Flow runs started inside send no heartbeats, unless $PREFECT_FLOWS_HEARTBEAT_FREQUENCY asks for them.

    Prefect 3.8.8 sends a flow run's heartbeat every 180 s by default, for an automation that
    marks runs whose heartbeats stop as crashed; its docs describe them for runs a deployment
    starts, which keep them here (``crowdloop deploy``). A round run from the command or the
    Python API is watched by whoever started it, and its heartbeat thread cost the run's end up to
    a second: the thread sleeps in 1-second steps and the run waits for it to notice the end.
    """
    from prefect.settings import temporary_settings

    if os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
        yield
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def current_flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in, or None outside one."""
    from prefect.runtime import flow_run

    return flow_run.get_id()


@task(name="load-campaign", **WRITES)
def load(campaign_dir: str) -> Loaded:
    campaign = store.open_campaign(campaign_dir)
    annotations = store.read_annotations(campaign)
    rounds, cfg = store.completed_rounds(campaign), config.load(campaign.params_file)
    version.check_param_sections(campaign)  # before the work: DVC would refuse the round's commit
    track.check_reachable(track.tracking_uri(campaign.mlruns, cfg.tracking.uri))  # nor log it
    history = [store.read_round_metrics(campaign, r) for r in rounds]
    return Loaded(campaign, cfg, store.read_examples(campaign), annotations,
                  gate.progress(campaign, cfg, annotations, history), history,
                  store.read_pred_probs(campaign, rounds[-1]) if rounds else None,
                  store.read_annotators(campaign, rounds[-1]) if rounds else None)


# The training step caches its own output, on disk under its content key (train.train_with_cache):
# Prefect's result store would hold a pickle of every pool-sized array.
def _may_pass(task, task_run, state) -> bool:
    """Retry a failure that may pass (a file system or network hiccup), never a user error: the same
    inputs fail the same way again (labels of one class, a model that cannot load)."""
    return not isinstance(getattr(state, "data", None), CrowdloopError)


@task(name="train-and-predict", retries=1, retry_delay_seconds=5, retry_condition_fn=_may_pass, **WRITES)
def train_and_predict(key: str, cache_dir: str, training: train.TrainingSet, *, model: config.ModelConfig,
                      n_classes: int, folds: int, seed: int, mc_passes: int, chunk_size: int,
                      map_fits=None) -> str:
    return str(train.train_with_cache(Path(cache_dir), key, training, model=model, n_classes=n_classes,
                                      folds=folds, seed=seed, mc_passes=mc_passes, chunk_size=chunk_size,
                                      map_fits=map_fits))


@dataclass(frozen=True)
class CampaignTrainer:
    """``plan_round``'s train step in a campaign: the task, keyed on the round's content, whose
    stored predictions an unchanged re-run reads back instead of training."""

    campaign: store.Campaign
    cfg: config.Config
    mc_passes: int
    map_fits: Callable | None = None  # flows/compute.fit_mapper: where the fold models are fitted

    def __call__(self, training: train.TrainingSet) -> train.Predictions:
        cfg = self.cfg
        key = train.training_key(training, settings=train.training_settings(cfg, self.mc_passes))
        # quote: Prefect would otherwise walk every text of the training set looking for futures.
        # Where the fold models are fitted (map_fits) is not in the key: it never changes what they are.
        train_and_predict(key, str(self.campaign.cache), quote(training), model=cfg.model,
                          n_classes=len(cfg.classes), folds=cfg.predict.folds, seed=cfg.seed,
                          mc_passes=self.mc_passes, chunk_size=cfg.predict.chunk_size, map_fits=self.map_fits)
        return train.load_predictions(self.campaign.cache, key)


@task(name="on-a-worker", task_run_name="{name}", **WRITES)
def on_worker(name: str, function, kwargs: dict, log_level: int, driver_pid: int):
    """``function(**kwargs)`` wherever the task runner puts it (flows/compute.py): a simulation arm ×
    seed, a round's fold model. In a process other than ``driver_pid`` crowdloop's lines go to that
    process's stderr from ``log_level`` up, as they do in the command."""
    if os.getpid() != driver_pid:
        console.log_to_stderr(log_level)
    return function(**kwargs)


@task(name="simulate-annotators", **WRITES)
def simulate_answers(batch: pd.DataFrame, uncollected: pd.DataFrame, collected: pd.DataFrame, seed: int):
    return annotators.simulate_answers(batch, uncollected, collected, seed=seed)


@task(name="save-round", **WRITES)
def save_round(loaded: Loaded, data, plan, metrics: dict, answers: pd.DataFrame | None) -> list[Path]:
    return record.save_round(loaded.campaign, loaded.number, data, plan, metrics, answers)


@task(name="track", retries=2, retry_delay_seconds=2, **WRITES)
def log_round(loaded: Loaded, plan, metrics: dict, flow_run_id: str | None) -> str:
    return record.log_round(loaded.campaign, loaded.number, loaded.cfg, plan, metrics, flow_run_id=flow_run_id)


@task(name="version", **WRITES)
def commit_round(loaded: Loaded, metrics: dict, parts: list[Path]) -> str:
    return record.commit_round(loaded.campaign, loaded.number, metrics, parts, push_next=bool(loaded.cfg.remote.url))


@task(name="lineage-and-champion", retries=2, retry_delay_seconds=2, **WRITES)
def publish_round(loaded: Loaded, run_id: str, score: float) -> int | None:
    return record.publish_round(loaded.campaign, loaded.number, run_id, loaded.cfg, score)


@task(name="push-data", retries=2, retry_delay_seconds=5, **WRITES)
def push(campaign: store.Campaign, url: str) -> None:
    version.push(campaign, url)


@task(name="ingest-inbox", **WRITES)
def ingest_inbox(campaign_dir: str) -> inbox.InboxReport:
    campaign = store.open_campaign(campaign_dir)
    return inbox.drain(campaign, config.load(campaign.params_file))


@task(name="pull-labelstudio", retries=2, retry_delay_seconds=5, **WRITES)
def pull_labelstudio(campaign_dir: str) -> str | None:
    """The Label Studio project's annotations, fetched into the inbox as an export file; None
    when params.yaml names no project."""
    campaign = store.open_campaign(campaign_dir)
    cfg = config.load(campaign.params_file)
    if cfg.labelstudio.project is None:
        return None
    from crowdloop.tasks import labelstudio_client

    return str(labelstudio_client.Server().pull(cfg.labelstudio.project, inbox.inbox_dir(campaign, cfg)))


@task(name="push-labelstudio", retries=2, retry_delay_seconds=5, **WRITES)
def push_labelstudio(campaign_dir: str, number: int) -> str | None:
    """Round ``number``'s batch, imported into the Label Studio project; None when params.yaml
    names no project."""
    campaign = store.open_campaign(campaign_dir)
    cfg = config.load(campaign.params_file)
    if cfg.labelstudio.project is None:
        return None
    from crowdloop.tasks import labelstudio_client

    tasks = labelstudio_client.round_tasks(campaign, number)
    pushed = labelstudio_client.Server().push(cfg.labelstudio.project, tasks, classes=cfg.classes)
    return f"round {number}: {pushed.imported} tasks imported into project {pushed.project}"


@task(name="commit-answers", retries=2, retry_delay_seconds=2, **WRITES)
def commit(campaign_dir: str, message: str, parts: list[Path]) -> str:
    campaign = store.open_campaign(campaign_dir)
    commit_id = version.commit(campaign, message, holds=parts)
    journal.checkpoint(campaign, commit_id)
    return commit_id


@task(name="decide", **WRITES)
def decide(campaign_dir: str, force: bool) -> gate.RoundDecision:
    campaign = store.open_campaign(campaign_dir)
    cfg = config.load(campaign.params_file)
    return gate.scheduled_decision(gate.progress(campaign, cfg), min_answered=cfg.schedule.min_answered, force=force)


@functools.lru_cache(maxsize=2)
def simulation_backend(model_cfg: config.ModelConfig, cache_dir: str):
    """The encoder, loaded once per process and shared by every arm; embeddings from the disk cache
    in ``cache_dir`` (simulation_store.cache_dir).

    Arms receive folders, not the data: Prefect stores flow parameters
    as JSON, which would copy the whole dataset into its database for every arm.
    """
    cache = embedding_cache.open_cache(Path(cache_dir), model_key(resolve_model_name(model_cfg.name)))
    return models.load_backend(model_cfg, embedding_cache=cache, progress=log.info)


@task(name="embed-texts", **WRITES)
def embed_texts(out_dir: str, base: config.Config, cache_dir: str) -> str:
    """Embed every text of the replay in out_dir once (head backend), cached on disk in ``cache_dir``;
    texts the cache already holds are not embedded again."""
    replay = simulation_store.read_replay(Path(out_dir))
    backend = simulation_backend(base.model, cache_dir)
    if hasattr(backend, "prepare"):
        backend.prepare(replay.examples["text"].tolist())
    return backend.name


class _HideUserErrors(logging.Filter):
    """Drops Prefect's run-engine records that carry a CrowdloopError (with its traceback), its
    "Finished in state Failed(... encountered an exception DataError: <the sentence>)" line, which
    names the error only in its text, and its "Crash detected!" and "Finished in state Crashed" lines
    of a run stopped by Ctrl-C or SIGTERM: the command reports each itself, as one sentence."""

    def filter(self, record: logging.LogRecord) -> bool:
        carried = [record.exc_info[1] if record.exc_info else None, *(record.args or ())]
        if any(isinstance(item, CrowdloopError) for item in carried):
            return False
        text = record.msg if isinstance(record.msg, str) else ""
        if text.startswith(("Crash detected! ", "Finished in state Crashed(")) and any(s in text for s in STOPPED):
            return False  # Ctrl-C or SIGTERM: the command says so in its own line
        named = re.search(r"encountered an exception:? (\w+): ", text) if text.startswith("Finished in state Failed") \
            else None
        return not (named and named.group(1) in _user_errors())


# The state message of a run stopped by Ctrl-C or SIGTERM (prefect.states.exception_to_crashed_state), in
# Prefect's "Crash detected! ..." and "Finished in state Crashed(...)" lines
STOPPED = ("Execution was aborted by an interrupt signal", "Execution was aborted by a termination signal")


def _user_errors() -> set[str]:
    """The class names of CrowdloopError and every subclass of it."""
    found, todo = set(), [CrowdloopError]
    while todo:
        kind = todo.pop()
        found.add(kind.__name__)
        todo.extend(kind.__subclasses__())
    return found


def hide_user_error_tracebacks() -> None:
    """Keep Prefect from logging the traceback of a user error (a CrowdloopError) that a flow run
    raises; the CLI prints the error as one line. Idempotent."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _HideUserErrors) for f in target.filters):
            target.addFilter(_HideUserErrors())
