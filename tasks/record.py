"""Recording a round: its data under data/ (store), its MLflow run (track), its commit and tag (version).

The round flow calls :func:`save_round` -> :func:`log_round` -> :func:`commit_round`;
when one fails, :func:`discard_round` puts data/ back as it was before the round
and marks the run failed, so a round is all-or-nothing as seen from data/. Once
committed, :func:`publish_round` adds the lineage tags and the champion.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from crowdloop.tasks import journal, lineage, round_data, route, store, track, track_process, version
from crowdloop.tasks.config import Config
from crowdloop.tasks.wording import count

log = logging.getLogger("crowdloop")


def save_round(campaign: store.Campaign, number: int, data: round_data.RoundData, plan, metrics: dict,
               answers: pd.DataFrame | None) -> list[Path]:
    """Write round ``number``'s outputs and the simulated ``answers`` to its batch (if any).

    ``plan``: the round's flows.plan.Plan. Returns the annotation part files added.
    """
    version.prewarm_dvc(campaign.root)  # DVC starts now: its start-up overlaps the save and the logging
    journal.note(campaign, round=number)
    parts = []
    if answers is not None and len(answers):
        part = store.next_part(campaign, round=number, source="simulated")
        journal.part(campaign, part, source="simulated", rows=len(answers), round=number)
        parts.append(store.append_annotations(campaign, answers, round=number, source="simulated", path=part))
    predictions = plan.predictions
    store.write_round(
        campaign, number, batch=plan.batch, consensus=round_data.consensus_table(data, plan.agreed),
        annotators=round_data.annotators_table(data, plan.agreed), metrics=metrics,
        pred_probs=round_data.probs_frame(data, predictions.pred_probs, predictions.pred_probs_unlabeled),
        assignments=route.assignments(plan.batch), unroutable=plan.unroutable)
    return parts


def log_round(campaign: store.Campaign, number: int, cfg: Config, plan, metrics: dict, *,
              flow_run_id: str | None) -> str:
    """Log the saved round as an MLflow run (params, metrics, files, model, learning curve) and
    write its lineage.json; returns the run id."""
    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}  # not stop_reason
    curve = pd.DataFrame([store.read_round_metrics(campaign, n) | {"round": n}
                          for n in store.completed_rounds(campaign) if n <= number])
    params = cfg.to_dict() | {"backend_used": plan.predictions.backend, "consensus_method": plan.agreed.method}
    model_dir = plan.predictions.model_dir
    run_id = track_process.call(track.log_round, campaign, number, name=lineage.campaign_name(campaign, cfg.name),
                                params=params, metrics=numbers, artifacts=store.round_artifacts(campaign, number),
                                model_dir=Path(model_dir) if model_dir else None, curve=curve, uri=cfg.tracking.uri,
                                tags=lineage.run_tags(number, flow_run_id=flow_run_id))
    uri = track.tracking_uri(campaign.mlruns, cfg.tracking.uri)
    store.write_lineage(campaign, number, lineage.round_ids(run_id, flow_run_id=flow_run_id, uri=uri))
    return run_id


def commit_round(campaign: store.Campaign, number: int, metrics: dict, parts: list[Path], *,
                 push_next: bool = False) -> str:
    """The round's DVC + git commit, tagged ``round-NNN``, holding its folder and annotation ``parts``
    (nothing else); returns the commit id. ``push_next``: the round's push follows (it reuses the
    commit's DVC interpreter)."""
    accuracy = metrics.get("test_accuracy", float("nan"))
    scored = (f"test accuracy {accuracy:.3f}" if accuracy == accuracy else  # NaN: no model, or no test split
              "no model yet" if metrics.get("model_trained") == 0 else "no test split")
    message = f"Round {number}: asked for {count(metrics['batch_size'], 'annotation')}; {scored}"
    return version.commit(campaign, message, tag=version.round_tag(number),
                          holds=[*parts, campaign.round_dir(number)], push_next=push_next)


def discard_round(campaign: store.Campaign, number: int, *, parts: list[Path], run_id: str | None,
                  uri: str | None) -> None:
    """Undo a round that failed before its commit: its folder and annotation ``parts`` go, metrics.json
    (and what DVC wrote) is the last commit's again, and its MLflow run (if it was logged) is marked FAILED."""
    store.discard_round(campaign, number, parts=parts)
    version.discard_prewarmed(campaign.root)
    version.restore_written(campaign)
    if run_id is None:
        return
    try:
        track_process.call(track.mark_failed, campaign, run_id, uri=uri)
    except Exception as err:  # the round already failed; this is only bookkeeping
        log.warning("could not mark MLflow run %s as failed: %s", run_id, err)


def publish_round(campaign: store.Campaign, number: int, run_id: str, cfg: Config, score: float) -> int | None:
    """Tag the committed round's run with its git commit and DVC hash; register its model as the
    champion when ``score`` beats the current one. Returns the new model version, or None."""
    if cfg.remote.url:  # the push comes next: the commit's DVC interpreter waits for it, or one starts now
        version.prewarm_dvc(campaign.root)
    tags = lineage.commit_tags(version.commit_of(campaign, version.round_tag(number)), version.data_md5(campaign))
    track_process.call(track.set_tags, campaign, run_id, tags, uri=cfg.tracking.uri)
    if cfg.tracking.register:
        return track_process.call(track.register_champion, campaign, run_id, score,
                                  name=lineage.campaign_name(campaign, cfg.name), uri=cfg.tracking.uri)
    return None
