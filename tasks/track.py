"""The only module that talks to MLflow.

One MLflow experiment per campaign, named after it
(:func:`crowdloop.tasks.lineage.campaign_name`), holds one parent run for the
campaign and, nested under it, one run per round. The tracking store
is ``tracking.uri`` of params.yaml, else ``MLFLOW_TRACKING_URI``, else
``sqlite:///<campaign>/mlruns/mlflow.db``; with a sqlite store the artifacts lie
beside the database (``artifacts/``), with a tracking server where it keeps them.
The best round's model so far is registered under the campaign's name, alias
``champion``. Every function that finds the campaign's runs by its name takes it as ``name``.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from crowdloop.tasks import report
from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.store import Campaign

CAMPAIGN_TAG = "crowdloop.run_kind"
CHAMPION = "champion"
SCORE = "test_accuracy"  # what makes a round's model the champion


def tracking_uri(mlruns: Path, configured: str | None = None) -> str:
    """``configured`` (params.yaml), else ``MLFLOW_TRACKING_URI``, else sqlite in the folder
    ``mlruns`` (a campaign's or a simulation's mlruns/)."""
    return (configured or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{(Path(mlruns) / 'mlflow.db').resolve()}")


def check_reachable(uri: str, *, timeout: float = 5.0) -> None:
    """Fail (CampaignError, one line) when a tracking server at an http(s) ``uri`` takes no connection
    within ``timeout`` seconds: MLflow's client would retry each request for minutes (with the
    campaign locked) before a traceback. Other stores (sqlite, a folder) are not checked."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise CampaignError(f"the MLflow tracking server at {uri} takes no connection ({err.strerror or err}); "
                            "start it, or set tracking.uri in params.yaml (null: mlruns/ in the campaign), then "
                            "run the round again.") from None


def _client(mlruns: Path, uri: str | None):
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(mlruns, uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(uri, registry_uri=uri)


def log_round(
    campaign: Campaign,
    number: int,
    *,
    name: str,
    params: dict,
    metrics: dict[str, float],
    artifacts: list[Path],
    model_dir: Path | None = None,
    curve: pd.DataFrame | None = None,
    tags: dict[str, str] | None = None,
    uri: str | None = None,
) -> str:
    """Log round ``number`` as a run nested under the campaign run; returns its run id.

    ``params`` is the nested params.yaml dict (flattened to ``section.key``); the
    campaign run also receives each metric at ``step=number`` so its charts show
    the learning curve across rounds. ``curve`` (one row per round so far, as
    :func:`crowdloop.tasks.report.plot_campaign` takes it) is drawn as learning_curve.png;
    ``tags`` are added to the run's own.
    """
    from mlflow.entities import Metric, Param, RunTag

    client = _client(campaign.mlruns, uri)
    experiment_id = _experiment(client, name)
    parent = _campaign_run(client, experiment_id, name)
    run = client.create_run(
        experiment_id,
        run_name=f"round-{number:03d}",
        tags={"mlflow.parentRunId": parent, "crowdloop.round": str(number), CAMPAIGN_TAG: "round"}
        | (tags or {}),
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    try:
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, number) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in _flatten(params).items()],
            tags=[RunTag("crowdloop.campaign", name)],
        )
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        if model_dir is not None and model_dir.is_dir():
            client.log_artifacts(run_id, str(model_dir), artifact_path="model")
        if curve is not None:
            title = f"{name}: learning curve up to round {number}"
            client.log_figure(run_id, report.plot_campaign(curve, title=title), "learning_curve.png")
        # The campaign run holds every round's metrics at step=round: the learning curve.
        client.log_batch(parent, metrics=[Metric(k, float(v), now, number) for k, v in metrics.items()])
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    client.set_terminated(parent)
    return run_id


def log_simulation(root: Path, name: str, *, params: dict, curves, artifacts: list[Path]) -> str:
    """One benchmark run (params, the figure and table) with a nested run per arm × seed
    holding its learning curve (metrics at ``step=round``), in the tracking store of the
    simulation folder ``root`` (``MLFLOW_TRACKING_URI``, else sqlite under root/mlruns/).
    Returns the benchmark run id."""
    from mlflow.entities import Metric, Param

    client = _client(root / "mlruns", None)
    experiment_id = _experiment(client, name)
    parent = client.create_run(experiment_id, run_name="benchmark", tags={CAMPAIGN_TAG: "benchmark"})
    parent_id = parent.info.run_id
    client.log_batch(parent_id, params=[Param(k, str(v)[:6000]) for k, v in _flatten(params).items()])
    now = int(time.time() * 1000)
    for (strategy, seed), rows in curves.groupby(["strategy", "seed"]):
        child = client.create_run(experiment_id, run_name=f"{strategy}-seed{seed}",
                                  tags={"mlflow.parentRunId": parent_id, CAMPAIGN_TAG: "arm",
                                        "crowdloop.strategy": strategy, "crowdloop.seed": str(seed)})
        metrics = [Metric(column, float(value), now, int(row["round"]))
                   for _, row in rows.iterrows()
                   for column, value in row.items()
                   if column not in ("strategy", "seed", "round") and not isinstance(value, str)
                   and value == value]
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics a call
            client.log_batch(child.info.run_id, metrics=metrics[start:start + 900])
        client.set_terminated(child.info.run_id)
    for path in artifacts:
        client.log_artifact(parent_id, str(path))
    client.set_terminated(parent_id)
    return parent_id


def set_tags(campaign: Campaign, run_id: str, tags: dict[str, str], *, uri: str | None = None) -> None:
    """Add ``tags`` to a run (the lineage known only once the round is committed)."""
    from mlflow.entities import RunTag

    _client(campaign.mlruns, uri).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def mark_failed(campaign: Campaign, run_id: str, *, uri: str | None = None) -> None:
    """A round whose data was discarded after its run was logged: say so in MLflow."""
    _client(campaign.mlruns, uri).set_terminated(run_id, status="FAILED")


def fail_unfinished(campaign: Campaign, number: int, *, name: str, uri: str | None = None) -> list[str]:
    """Mark round ``number``'s runs that never finished (their process died) FAILED; returns their ids."""
    client = _client(campaign.mlruns, uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], filter_string=(
        f"tags.crowdloop.round = '{number}' and tags.{CAMPAIGN_TAG} = 'round' and attributes.status = 'RUNNING'"))
    for run in runs:
        client.set_terminated(run.info.run_id, status="FAILED")
    return [run.info.run_id for run in runs]


def find_runs(campaign: Campaign, run_ids: list[str], *, name: str, uri: str | None = None) -> dict[str, tuple[str, str]]:
    """``{run id: (status, experiment name)}`` of the runs ``run_ids`` (the rounds' lineage.json) that
    the tracking store holds: in the campaign's experiment ``name`` (one search), else by id in any
    other (a campaign cloned into, or moved to, a directory of another name before params.yaml
    held its ``name``). A run the store does not hold is left out."""
    from mlflow.exceptions import MlflowException

    client = _client(campaign.mlruns, uri)
    experiment = client.get_experiment_by_name(name)
    found = {} if experiment is None else {
        run.info.run_id: (run.info.status, name) for run in
        client.search_runs([experiment.experiment_id], filter_string=f"tags.{CAMPAIGN_TAG} = 'round'",
                           max_results=50_000)}
    experiments = {}
    for run_id in dict.fromkeys(run_ids):
        if run_id in found:
            continue
        try:
            info = client.get_run(run_id).info
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            continue
        if info.experiment_id not in experiments:
            experiments[info.experiment_id] = client.get_experiment(info.experiment_id).name
        found[run_id] = (info.status, experiments[info.experiment_id])
    return found


def register_champion(campaign: Campaign, run_id: str, score: float, *, name: str,
                      uri: str | None = None) -> int | None:
    """Register the run's model as the next version of the campaign's model and point the
    alias ``champion`` at it when ``score`` beats the champion's (or there is none yet).

    Returns the new version number, or None when the champion stays.
    """
    from mlflow.exceptions import MlflowException

    if score != score:  # NaN: no gold test split, nothing to rank models by
        return None
    client = _client(campaign.mlruns, uri)
    try:
        best = client.get_model_version_by_alias(name, CHAMPION)
        if float(best.tags.get(SCORE, "nan")) >= score:
            return None
    except MlflowException:  # no registered model or no champion yet
        if not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(name, description=f"Best model of the crowdloop campaign {name}.")
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(name, source, run_id=run_id, tags={SCORE: repr(float(score))})
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return int(version.version)


def _experiment(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None
    if client.tracking_uri.startswith("sqlite:///"):  # a server keeps artifacts where it is set up to
        artifacts = (Path(client.tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return client.create_experiment(name, artifact_location=artifacts)


def _campaign_run(client, experiment_id: str, name: str) -> str:
    found = client.search_runs([experiment_id], filter_string=f"tags.{CAMPAIGN_TAG} = 'campaign'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=name, tags={CAMPAIGN_TAG: "campaign"})
    return run.info.run_id


def _flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
