"""Lineage: which git commit, DVC data hash, MLflow run and Prefect flow run a round is.

Each round's MLflow run carries the tags below, and each round's folder holds
``lineage.json`` with the MLflow run id and the Prefect flow-run id, so from any
one of the four ids the other three can be found. The git commit and the DVC hash
exist only once the round is committed, so they are added to the run afterwards
(:func:`crowdloop.tasks.record.publish_round`). The campaign itself is known to MLflow
(its experiment, its registered model) and Prefect (its deployment) by :func:`campaign_name`.
"""

from __future__ import annotations

from crowdloop.tasks import version
from crowdloop.tasks.store import Campaign

# MLflow tag keys on a round's run.
GIT_COMMIT_KEY = "crowdloop.git_commit"
GIT_TAG_KEY = "crowdloop.round_tag"
DVC_MD5_KEY = "crowdloop.dvc_data_md5"
FLOW_RUN_KEY = "crowdloop.prefect_flow_run_id"


def campaign_name(campaign: Campaign, configured: str | None) -> str:
    """The campaign's MLflow experiment, registered model and Prefect deployment: ``configured``
    (params.yaml ``name``, which `crowdloop init` writes, so it survives a clone or a renamed
    directory), else the directory's name (campaigns made before that key)."""
    return configured or campaign.root.resolve().name


def run_tags(number: int, *, flow_run_id: str | None) -> dict[str, str]:
    """Tags known when the round's MLflow run is created."""
    tags = {GIT_TAG_KEY: version.round_tag(number)}
    if flow_run_id:
        tags[FLOW_RUN_KEY] = str(flow_run_id)
    return tags


def commit_tags(commit: str | None, md5: str | None) -> dict[str, str]:
    """Tags known once the round is committed."""
    return {k: v for k, v in ((GIT_COMMIT_KEY, commit), (DVC_MD5_KEY, md5)) if v}


def round_ids(run_id: str, *, flow_run_id: str | None, uri: str) -> dict:
    """What a round's lineage.json holds."""
    return {"mlflow_run_id": run_id, "mlflow_tracking_uri": uri, "prefect_flow_run_id": flow_run_id}
