"""A scheduled round: store what arrived in the inbox, then run a round only if it is worth it.

``scheduled_round`` is what ``crowdloop deploy`` serves on the Prefect server. When
params.yaml names a Label Studio project, it first fetches the project's annotations into
the inbox, and sends the new batch to the project after a round (a Label Studio that
cannot be reached is logged and reported; the round goes on). It waits for people: a
round runs when at least ``schedule.min_answered`` of the last batch has come back (or when forced, or for the first round) and the stopping
rule has not fired (``tasks/gate.py`` decides); otherwise the flow run ends in a
Completed state named ``Skipped`` whose message says why, and returns
``{"skipped": True, ...}``. Answer files that cannot be stored are moved to the
inbox's ``rejected/`` folder with their error and do not fail the run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed

from crowdloop import console
from crowdloop.flows import steps
from crowdloop.flows.round import round_flow
from crowdloop.tasks import ingest, recovery, store
from crowdloop.tasks.errors import CrowdloopError


@flow(name="crowdloop-scheduled-round")
def scheduled_round(campaign_dir: str, force: bool = False):
    """Ingest the inbox of the campaign at ``campaign_dir``, then run its next round or skip: all of
    it holding the campaign's lock, so no other writer comes between the answers and the round."""
    console.log_to_stderr_if_unheard(logging.INFO)
    console.log_to_prefect()
    # A user error (a model that does not load, a Dask scheduler gone) is one line in the run's logs
    # and the worker's output, as on the command line; Prefect's lines would give it four times, with
    # two tracebacks. The run still ends Failed, the error its state's message.
    steps.hide_user_error_tracebacks()
    try:
        with recovery.writing(store.Campaign(Path(campaign_dir)), "scheduled round"):
            return _ingest_decide_run(campaign_dir, force)
    except CrowdloopError as err:
        get_run_logger().error("the scheduled round failed: %s", str(err))  # str: the filter drops records carrying one
        raise


def _ingest_decide_run(campaign_dir: str, force: bool):
    logger = get_run_logger()
    pulled = _labelstudio(steps.pull_labelstudio, campaign_dir)
    report = steps.ingest_inbox(campaign_dir)
    if report.new:
        steps.commit(campaign_dir, ingest.commit_message(report.ingested), [r.part for r in report.ingested if r.part])
    for path, error in report.rejected:
        logger.warning("rejected %s: %s", path, error)
    summary = {"ingested": report.new, "files": [r.source for r in report.ingested],
               "rejected": {str(path): error for path, error in report.rejected}, "labelstudio": pulled}
    decision = steps.decide(campaign_dir, force)
    summary["reason"] = decision.reason
    if not decision.run:
        logger.info("skipped: %s", decision.reason)
        return Completed(name="Skipped", message=f"skipped: {decision.reason}", data=summary | {"skipped": True})
    logger.info("running a round: %s", decision.reason)
    result = round_flow(campaign_dir, force=force)
    pushed = _labelstudio(steps.push_labelstudio, campaign_dir, result.round)
    return summary | {"skipped": False, "round": result.round, "run_id": result.run_id, "labelstudio_push": pushed,
                      "test_accuracy": result.metrics.get("test_accuracy"), "problems": result.problems}


def _labelstudio(step, *args) -> str | None:
    """A Label Studio step's result; a Label Studio that is down or refuses the token is logged
    and reported ("failed: ..."), and the scheduled round goes on without it."""
    try:
        return step(*args)
    except CrowdloopError as err:
        get_run_logger().warning("Label Studio: %s", err)
        return f"failed: {err}"
