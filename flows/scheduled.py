"""A scheduled round: store what arrived in the inbox, then run a round only if it is worth it.

``scheduled_round`` is what ``crowdloop deploy`` serves on the Prefect server. It
waits for people: a round runs when at least ``schedule.min_answered`` of the last
batch has come back (or when forced, or for the first round) and the stopping
rule has not fired; otherwise the flow
run ends in a Completed state named ``Skipped`` whose message says why, and
returns ``{"skipped": True, ...}``. Answer files that cannot be stored are moved to
the inbox's ``rejected/`` folder with their error and do not fail the run.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.states import Completed

from crowdloop.flows.round import round_flow
from crowdloop.tasks import config as config_mod
from crowdloop.tasks import inbox, store, version


@task(name="ingest-inbox")
def ingest_inbox_task(campaign_dir: str) -> dict:
    campaign = store.open_campaign(campaign_dir)
    report = inbox.drain(campaign, config_mod.load(campaign.params_file))
    if report.new:
        names = ", ".join(s.path.name for s in report.stored if s.new)
        commit_task(campaign, f"Ingest {report.new} annotations from the inbox ({names})")
    return {"ingested": report.new, "files": [str(s.path) for s in report.stored],
            "rejected": {str(path): error for path, error in report.rejected}}


@task(name="commit-answers", retries=2, retry_delay_seconds=2)
def commit_task(campaign: store.Campaign, message: str) -> str:
    return version.commit(campaign, message)


@task(name="decide")
def decide_task(campaign_dir: str, force: bool) -> inbox.Decision:
    campaign = store.open_campaign(campaign_dir)
    cfg = config_mod.load(campaign.params_file)
    rounds = store.completed_rounds(campaign)
    batch_ids = store.read_batch(campaign, rounds[-1])["example_id"] if rounds else None
    back = inbox.answered(batch_ids, store.read_annotations(campaign), rounds[-1]) if rounds else 0
    last = store.read_round_metrics(campaign, rounds[-1]) if rounds else {}
    stopped = (last.get("stop_reason") or "see metrics.json") if last.get("stop") else None
    return inbox.decide(rounds=rounds, asked=0 if batch_ids is None else len(batch_ids), back=back,
                        min_answered=cfg.schedule.min_answered, force=force, stopped=stopped)


@flow(name="crowdloop-scheduled-round")
def scheduled_round(campaign_dir: str, force: bool = False):
    """Ingest the inbox of the campaign at ``campaign_dir``, then run its next round or skip."""
    logger = get_run_logger()
    summary = ingest_inbox_task(campaign_dir)
    for path, error in summary["rejected"].items():
        logger.warning("rejected %s: %s", path, error)
    decision = decide_task(campaign_dir, force)
    summary["reason"] = decision.reason
    if not decision.run:
        logger.info("skipped: %s", decision.reason)
        return Completed(name="Skipped", message=f"skipped: {decision.reason}", data=summary | {"skipped": True})
    logger.info("running a round: %s", decision.reason)
    result = round_flow(campaign_dir, force=force)
    return summary | {"skipped": False, "round": result["round"], "run_id": result["run_id"],
                      "test_accuracy": result["metrics"].get("test_accuracy"), "problems": result["problems"]}
