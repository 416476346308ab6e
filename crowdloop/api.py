"""crowdloop's Python API: what the ``crowdloop`` command itself calls, for notebooks and scripts.

>>> import crowdloop
>>> camp = crowdloop.init_demo("campaigns/demo")             # or init_campaign(root, examples, classes=...)
>>> for result in crowdloop.run_rounds(camp, 2, simulate=True):
...     print(result.round, result.metrics["test_accuracy"])
>>> crowdloop.ingest(camp, "answers.csv")                      # read, check, store, commit
>>> crowdloop.export(camp, format="label-studio")              # the last batch as Label Studio tasks
>>> print(crowdloop.status(camp))                              # what `crowdloop status` prints

Every function takes a campaign as a :class:`Campaign` or its directory. Errors a user
can fix raise :class:`CrowdloopError` subclasses whose message says what to do.
Heavy libraries (Prefect, MLflow, torch) are imported only by the functions that use them.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import pandas as pd

from crowdloop import campaign as campaign_mod
from crowdloop import examples_file, history_table, status_table
from crowdloop.tasks import config as config_mod
from crowdloop.tasks import config_checks
from crowdloop.tasks import ingest as ingest_mod
from crowdloop import labelstudio_api
from crowdloop.labels_api import Labels, export_labels
from crowdloop.labelstudio_api import Exported, export, labelstudio_push
from crowdloop.versions_api import Pushed, RolledBack, pull, push, rollback, verify
from crowdloop.tasks import labelstudio_client, recovery, store, version
from crowdloop.tasks.errors import ConfigError, CrowdloopError
from crowdloop.tasks.store import Campaign

log = logging.getLogger("crowdloop")

__all__ = ["Campaign", "CrowdloopError", "Exported", "Labels", "Pushed", "RolledBack", "export", "export_labels",
           "history", "ingest", "init_campaign", "init_demo", "labelstudio_pull", "labelstudio_push",
           "open_campaign", "pull", "push", "rollback", "run_round", "run_rounds", "simulate", "status", "verify"]


def open_campaign(root: str | Path | Campaign) -> Campaign:
    """The campaign at ``root``: a directory made by :func:`init_campaign` or `crowdloop init`, or a Campaign."""
    return store.open_campaign(root)


def init_campaign(root: str | Path, examples: pd.DataFrame | str | Path, *, classes: Sequence[str], seed: int = 0,
                  initial: pd.DataFrame | None = None, params: dict | None = None) -> Campaign:
    """A new campaign at ``root``, committed as round 0.

    ``examples``: a DataFrame (schema.EXAMPLE_COLUMNS) or a CSV/TSV/JSONL/parquet file with
    ``id`` and ``text`` (optional ``split`` = pool/test and ``gold``). ``initial``: answers
    already collected (example_id, annotator_id, label). ``params``: settings laid over the
    template params.yaml, e.g. ``{"select": {"batch_size": 50}}``.
    """
    campaign_mod.check_classes(classes)  # first: a gold label is checked against the classes
    examples = (examples_file.examples_frame(examples, classes=classes) if isinstance(examples, pd.DataFrame)
                else examples_file.read_examples_file(Path(examples), classes=classes))
    return campaign_mod.init_campaign(Path(root), examples, classes=classes, seed=seed, initial=initial,
                                      params=params)


def init_demo(root: str | Path, *, seed: int = 0, params: dict | None = None) -> Campaign:
    """The demo campaign (support tickets, 4 classes, 12 simulated annotators) at ``root``."""
    return campaign_mod.init_demo(Path(root), seed=seed, params=params)


def run_round(campaign: str | Path | Campaign, *, simulate: bool = False, force: bool = False):
    """The next round (a Prefect flow run): returns its ``RoundResult`` (``round``, ``metrics``,
    ``seconds``, ``strategy``, ``run_id``, ``problems``); the batch is in data/rounds/NNN/batch.csv.

    ``simulate``: the campaign's simulated annotators answer the batch. ``force``: run even
    if the last batch has no answer or the stopping rule fired. The round holds the campaign's
    lock (another writer waits up to ``lock.timeout_seconds``) and first finishes or undoes
    what an interrupted command left.
    """
    from crowdloop.flows import steps
    from crowdloop.flows.round import round_flow

    steps.hide_user_error_tracebacks()
    with steps.without_heartbeats():
        return round_flow(str(open_campaign(campaign).root.resolve()), simulate=simulate, force=force)


def run_rounds(campaign: str | Path | Campaign, count: int, *, simulate: bool = False, force: bool = False):
    """Up to ``count`` rounds in a row, stopping early once the stopping rule fires (with ``force``,
    all ``count`` of them); yields each ``RoundResult`` as it finishes."""
    if count < 1:
        raise ConfigError(f"the number of rounds must be at least 1, got {count}.")
    for _ in range(count):
        result = run_round(campaign, simulate=simulate, force=force)
        yield result
        if result.metrics.get("stop") and not force:
            return


def ingest(campaign: str | Path | Campaign, path: str | Path, *, skip_invalid: bool = False) -> ingest_mod.Ingested:
    """Store the answers in ``path`` (CSV, TSV, JSONL, or a Label Studio JSON, CSV or TSV export) and commit
    them; a bad file raises IngestError (file and line, or task) and stores nothing. Answers
    already stored are not stored again.

    ``skip_invalid``: store the valid rows and write the others, each with its reason, to
    ``<file>.refused.csv`` beside the file (``result.refused``, ``result.refused_file``).
    """
    camp = open_campaign(campaign)
    cfg = config_mod.load(camp.params_file)
    with recovery.writing(camp, "ingest") as edited:
        # A batch filled in where it lies in data/ has just been kept aside: its answers are in the kept file.
        path = version.kept_version(camp, Path(path), edited)
        result = ingest_mod.ingest_file(camp, path, classes=cfg.classes, on_change=cfg.ingest.on_change,
                                        labelstudio=cfg.labelstudio, skip_invalid=skip_invalid)
        if len(result.new):
            version.commit(camp, ingest_mod.commit_message([result]), holds=[result.part])
    return result


def labelstudio_pull(campaign: str | Path | Campaign) -> ingest_mod.Ingested:
    """Fetch the annotations of the Label Studio project of params.yaml as a JSON export (kept
    in exports/labelstudio/) and ingest it like any answer file (:func:`ingest`)."""
    camp = open_campaign(campaign)
    cfg = config_mod.load(camp.params_file)
    project = labelstudio_api.project(cfg)
    path = labelstudio_client.Server().pull(project, camp.exports_dir / "labelstudio")
    return ingest(camp, path)


def status(campaign: str | Path | Campaign) -> status_table.Status:
    """Where the campaign stands (rounds, annotations, what is waiting); ``str()`` it to print."""
    return status_table.collect(open_campaign(campaign))


def history(campaign: str | Path | Campaign) -> list[dict]:
    """One dict a round: its git commit, DVC hash, MLflow run and Prefect flow run, annotations, accuracy."""
    return history_table.rows(open_campaign(campaign))


def simulate(source: str | Path, *, format: str = "tutorial", preset: str = "tutorial", seeds: int = 5,
             strategies: Sequence[str] = ("auto", "random"), params: str | Path | None = None,
             target: float = 0.9, metric: str | None = None, out: str | Path = "simulations/latest",
             protocol: dict | None = None, consensus: Sequence[str] | None = None,
             embedding_cache: str | Path | None = None, **import_options) -> dict:
    """Replay a multi-annotator dataset: every strategy × seed picks batches that simulated
    annotators answer from the annotations not yet collected.

    ``format``: tutorial | long | wide | datasets | lewidi, read with ``import_options``
    (see ``crowdloop.tasks.importers``). ``preset``: the protocol (tutorial | rte);
    ``protocol`` overrides its fields (rounds, batch_size, n_start, labels_per_start,
    max_annotations_per_example, folds, test_size, answered_by, evaluate, validation_size,
    goes_bad, bad_annotator); a value that cannot run raises ConfigError before anything is written.
    ``consensus``: the consensus bake-off: every strategy runs once with each of these methods
    (``["all"]``: every method), in arms named ``strategy+method``; None: each strategy's own.
    ``params``: a params.yaml for the model settings. ``metric``: what annotations-to-
    ``target`` and ROI read (accuracy | macro_f1 | balanced_accuracy | consensus_accuracy;
    default macro_f1). ``embedding_cache``: a folder for the text embeddings that several
    simulations of the same texts share, each text embedded once (None: ``out``/.cache).
    Writes curves.csv, learning_curve.png and summary.txt in ``out``
    (a folder resumes what it holds); returns ``{curves, summary, paths, run_id}``.
    """
    from crowdloop.flows import simulate as simulate_flows
    from crowdloop.flows import steps
    from crowdloop.tasks import importers, replay_split, report, simulation_protocol, simulation_store

    # each once: a strategy named twice would run twice into one checkpoint folder and double its rows
    chosen = list(config_checks.STRATEGIES) if list(strategies) == ["all"] else list(dict.fromkeys(strategies))
    if "all" in chosen:
        raise ConfigError("--strategies all stands for every strategy, so it stands alone; give all, or names "
                          "without it.")
    for name in chosen:
        config_checks.check_strategy(name, source="strategies")
    if preset not in simulation_protocol.PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; use one of {', '.join(simulation_protocol.PRESETS)}.")
    metric = metric or report.DEFAULT_METRIC
    if metric not in report.METRICS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(report.METRICS)}.")
    changes = {k: v for k, v in (protocol or {}).items() if v is not None}
    unknown = sorted(set(changes) - set(simulation_protocol.PROTOCOL_FLAGS))
    if unknown:
        raise ConfigError(f"unknown protocol setting {unknown[0]!r}; use {', '.join(simulation_protocol.PROTOCOL_FLAGS)}.")
    methods = [None] if consensus is None else config_checks.consensus_methods(consensus)
    plan = dataclasses.replace(simulation_protocol.PRESETS[preset], **changes,
                               arms=tuple(simulation_protocol.arm(s, m) for s in chosen for m in methods))
    simulation_protocol.check_simulation(plan, seeds=seeds, target=target, metric=metric)
    for flag, folder in (("--out", out), ("--embedding-cache", embedding_cache)):
        # the folder, or the nearest folder above it that exists, must be a folder
        there = None if folder is None else next((p for p in (Path(folder), *Path(folder).parents) if p.exists()), None)
        if there is not None and not there.is_dir():
            raise ConfigError(f"{flag} {folder}: {there} is a file; name a folder (made if missing).")
    if params is not None and not Path(params).is_file():  # config.load's message is about campaigns
        raise ConfigError(f"--params {params}: no such params file; name an existing params.yaml, or leave "
                          "--params out for the template's settings.")
    base = config_mod.load(params)
    _say_what_arms_override(base, params)
    replay = importers.load(format, Path(source), **import_options)
    if plan.bad_annotator is not None and plan.bad_annotator not in set(replay.uncollected["annotator_id"]):
        raise ConfigError(f"--bad-annotator {plan.bad_annotator!r} holds no answer in {source}; name one who does.")
    # data that comes with its start (the tutorial's X_labeled_full.csv) keeps it unless the start is asked for
    redraw = bool({"n_start", "labels_per_start"} & set(changes))
    replay = replay_split.split_for_simulation(replay, seed=0, n_start=plan.n_start,
                                               labels_per_start=plan.labels_per_start, test_size=plan.test_size,
                                               evaluate=plan.evaluate, validation_size=plan.validation_size,
                                               redraw_start=redraw)
    out = Path(out)
    steps.hide_user_error_tracebacks()
    simulation_store.prepare(out, replay, simulation_protocol.run_settings(base, plan))
    title = f"{Path(source).name}: {preset} preset" + (" (validation split)" if plan.evaluate == "validation" else "")
    shared = None if embedding_cache is None else str(Path(embedding_cache).resolve())
    return simulate_flows.simulate_flow(str(out), plan, list(range(seeds)), base, title, target=target,
                                        metric=metric, shared_cache=shared)


def _say_what_arms_override(base: config_mod.Config, params: str | Path | None) -> None:
    """Warn when ``params`` sets a key each arm sets for itself, which the simulation therefore never reads."""
    template = config_mod.load()
    unread = [f"{key}: {mine}" for key, mine, default in (
        ("consensus.method", base.consensus.method, template.consensus.method),
        ("score.strategy", base.score.strategy, template.score.strategy),
        ("predict.folds", base.predict.folds, template.predict.folds)) if mine != default]
    if unread:
        log.warning("%s sets %s, which a simulation does not read: each arm takes its strategy from --strategies "
                    "and its consensus method from --consensus (without it: crowdlab, and majority for random), "
                    "and the folds come from the preset (--folds)", params, " and ".join(unread))
