"""The only module that talks to MLflow.

One MLflow experiment per campaign (named after its directory) holds one parent
run for the campaign and, nested under it, one run per round. The tracking store
is ``sqlite:///<campaign>/mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts``,
unless ``MLFLOW_TRACKING_URI`` names another (a tracking server, for instance).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from crowdloop.tasks.store import Campaign

CAMPAIGN_TAG = "crowdloop.run_kind"


def tracking_uri(campaign: Campaign) -> str:
    """The tracking store of ``campaign``: the environment's, else sqlite under mlruns/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(campaign.mlruns / 'mlflow.db').resolve()}"


def log_round(
    campaign: Campaign,
    number: int,
    *,
    params: dict,
    metrics: dict[str, float],
    artifacts: list[Path],
    model_dir: Path | None = None,
) -> str:
    """Log round ``number`` as a run nested under the campaign run; returns its run id.

    ``params`` is the nested params.yaml dict (flattened to ``section.key``); the
    campaign run also receives each metric at ``step=number`` so its charts show
    the learning curve across rounds.
    """
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    campaign.mlruns.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri(campaign))
    experiment_id = _experiment(client, campaign)
    parent = _campaign_run(client, experiment_id, campaign)
    run = client.create_run(
        experiment_id,
        run_name=f"round-{number:03d}",
        tags={"mlflow.parentRunId": parent, "crowdloop.round": str(number), CAMPAIGN_TAG: "round"},
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    try:
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, number) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in _flatten(params).items()],
            tags=[RunTag("crowdloop.campaign", campaign.name)],
        )
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        if model_dir is not None and model_dir.is_dir():
            client.log_artifacts(run_id, str(model_dir), artifact_path="model")
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
    holding its learning curve (metrics at ``step=round``). Returns the benchmark run id."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    store_root = root / "mlruns"
    store_root.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI")
                          or f"sqlite:///{(store_root / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        name, artifact_location=None if "MLFLOW_TRACKING_URI" in os.environ
        else (store_root / "artifacts").resolve().as_uri())
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


def round_runs(campaign: Campaign) -> list[dict]:
    """Finished round runs of the campaign: ``{round, run_id, metrics}``, by round."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(campaign))
    experiment = client.get_experiment_by_name(campaign.name)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{CAMPAIGN_TAG} = 'round' and attributes.status = 'FINISHED'",
    )
    rows = [{"round": int(r.data.tags["crowdloop.round"]), "run_id": r.info.run_id,
             "metrics": dict(r.data.metrics)} for r in runs]
    return sorted(rows, key=lambda r: r["round"])


def _experiment(client, campaign: Campaign) -> str:
    experiment = client.get_experiment_by_name(campaign.name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None
    if "MLFLOW_TRACKING_URI" not in os.environ:
        artifacts = (campaign.mlruns / "artifacts").resolve().as_uri()
    return client.create_experiment(campaign.name, artifact_location=artifacts)


def _campaign_run(client, experiment_id: str, campaign: Campaign) -> str:
    found = client.search_runs([experiment_id], filter_string=f"tags.{CAMPAIGN_TAG} = 'campaign'",
                               max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=campaign.name, tags={CAMPAIGN_TAG: "campaign"})
    return run.info.run_id


def _flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
