"""The Python API's Label Studio half (re-exported by :mod:`crowdloop.api`): a round's batch as Label
Studio task files, or sent to a Label Studio project (``labelstudio_pull``, which ingests, is in the API)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import labelstudio_client, labelstudio_format, store
from crowdloop.tasks.errors import CampaignError, ConfigError
from crowdloop.tasks.schema import EXPORT_FORMATS
from crowdloop.tasks.store import Campaign


@dataclasses.dataclass(frozen=True)
class Exported:
    """An export: the round whose batch it holds, how many tasks, and the files written."""

    round: int
    tasks: int
    files: list[Path]


def export(campaign: str | Path | Campaign, *, format: str = "label-studio", round: int | None = None) -> Exported:
    """Round ``round``'s batch (default: the last round's) as Label Studio tasks plus its labeling
    config, in exports/round-NNN/: ``format`` label-studio (tasks.json), label-studio-csv
    (tasks.csv, safe to open in a spreadsheet) or label-studio-jsonl (tasks.jsonl, for cloud storage)."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; use one of {', '.join(EXPORT_FORMATS)}.")
    camp, cfg, number, tasks = batch_tasks(campaign, round)
    files = labelstudio_format.task_files(tasks, cfg.classes, form=EXPORT_FORMATS[format])
    folder = camp.exports_dir / f"round-{number:03d}"
    return Exported(number, len(tasks), [store.write_file(folder / name, text) for name, text in files.items()])


def labelstudio_push(campaign: str | Path | Campaign, *, round: int | None = None):
    """Send round ``round``'s batch (default: the last round's) to the Label Studio project of
    params.yaml (``labelstudio.project``; created when no project has that title). Tasks the
    project already has are not sent again. Returns a ``Pushed`` (round, project, imported, already)."""
    _, cfg, number, tasks = batch_tasks(campaign, round)
    name = project(cfg)  # a missing project name is reported before a missing server address
    pushed = labelstudio_client.Server().push(name, tasks, classes=cfg.classes)
    return dataclasses.replace(pushed, round=number)


def batch_tasks(campaign, number: int | None):
    """The campaign, its config, the round (the last if None) and its batch as Label Studio tasks."""
    camp = store.open_campaign(campaign)
    cfg = config_mod.load(camp.params_file)
    rounds = store.completed_rounds(camp)
    if not rounds:
        raise CampaignError(f"{camp.root.resolve()}: no round has run yet, so there is no batch; "
                            "run `crowdloop round` first.")
    number = rounds[-1] if number is None else number
    if number not in rounds:
        raise CampaignError(f"{camp.root.resolve()}: there is no round {number}; rounds so far: {rounds[0]} to "
                            f"{rounds[-1]}.")
    return camp, cfg, number, labelstudio_client.round_tasks(camp, number)


def project(cfg: config_mod.Config) -> str | int:
    """The Label Studio project params.yaml names (a title or a number); ConfigError when it names none."""
    if cfg.labelstudio.project is None:
        raise ConfigError("params.yaml: 'labelstudio.project' is null; name the Label Studio project (a title, "
                          "which push creates, or its number).")
    return cfg.labelstudio.project
