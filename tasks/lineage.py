"""Lineage: which git commit, DVC data hash, MLflow run and Prefect flow run a round is.

Each round's MLflow run carries the tags below, and each round's folder holds
``lineage.json`` with the MLflow run id and the Prefect flow-run id, so from any
one of the four ids the other three can be found. The git commit and the DVC
hash exist only once the round is committed, so they are added to the run after
the commit (:func:`finish_round`), together with the champion registration and
the push to the DVC remote: steps that may fail for passing reasons (a server
restarting, a network hiccup) and are retried, but never undo a committed round.
"""

from __future__ import annotations

import logging

from prefect import task

from crowdloop.tasks import store, track, version
from crowdloop.tasks.config import Config

log = logging.getLogger("crowdloop")

GIT_COMMIT = "crowdloop.git_commit"
ROUND_TAG = "crowdloop.round_tag"
DVC_MD5 = "crowdloop.dvc_data_md5"
FLOW_RUN = "crowdloop.prefect_flow_run_id"


def current_flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in, or None outside one."""
    from prefect.runtime import flow_run

    return flow_run.get_id()


def run_tags(number: int, *, flow_run_id: str | None) -> dict[str, str]:
    """Tags known when the round's MLflow run is created."""
    tags = {ROUND_TAG: version.ROUND_TAG.format(number)}
    if flow_run_id:
        tags[FLOW_RUN] = str(flow_run_id)
    return tags


def commit_tags(commit: str | None, md5: str | None) -> dict[str, str]:
    """Tags known once the round is committed."""
    return {k: v for k, v in ((GIT_COMMIT, commit), (DVC_MD5, md5)) if v}


def round_ids(run_id: str, *, flow_run_id: str | None, uri: str) -> dict:
    """What a round's lineage.json holds."""
    return {"mlflow_run_id": run_id, "mlflow_tracking_uri": uri, "prefect_flow_run_id": flow_run_id}


def forget_run(campaign: store.Campaign, run_id: str | None, *, uri: str | None) -> None:
    """Mark the MLflow run of a round that failed (and was discarded) as FAILED, if it exists."""
    if run_id is None:
        return
    try:
        track.mark_failed(campaign, run_id, uri=uri)
    except Exception as err:  # the round already failed; this is only bookkeeping
        log.warning("could not mark MLflow run %s as failed: %s", run_id, err)


@task(name="lineage-and-champion", retries=2, retry_delay_seconds=2)
def publish_task(campaign: store.Campaign, number: int, run_id: str, score: float, cfg: Config) -> int | None:
    """Tag the round's run with its git commit and DVC hash; register it if it is the champion."""
    tags = commit_tags(version.commit_of(campaign, version.ROUND_TAG.format(number)),
                       version.data_md5(campaign))
    track.set_tags(campaign, run_id, tags, uri=cfg.tracking.uri)
    if cfg.tracking.register:
        return track.register_champion(campaign, run_id, score, uri=cfg.tracking.uri)
    return None


@task(name="push-data", retries=2, retry_delay_seconds=5)
def push_task(campaign: store.Campaign, url: str) -> None:
    version.push(campaign, url)


def finish_round(campaign: store.Campaign, number: int, run_id: str, score: float, cfg: Config) -> list[str]:
    """After the commit: lineage tags, champion, push. Returns what still failed after retries."""
    problems = []
    try:
        registered = publish_task(campaign, number, run_id, score, cfg)
        if registered is not None:
            log.info("round %d's model is the new champion: %s version %d", number, campaign.name, registered)
    except Exception as err:
        problems.append(f"MLflow lineage tags or champion not recorded ({err})")
    if cfg.remote.url:
        try:
            push_task(campaign, cfg.remote.url)
        except Exception as err:
            problems.append(f"data not pushed to {cfg.remote.url} ({err}); run `crowdloop push` later")
    for problem in problems:
        log.warning("round %d is committed, but %s", number, problem)
    return problems
