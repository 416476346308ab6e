"""Answer files arriving in a campaign's inbox folder, ingested and moved aside.

People (or a labeling tool) drop answer files — CSV, TSV, JSONL or a Label Studio
JSON export, as for ``crowdloop ingest`` — into the campaign's inbox (``schedule.inbox`` in
params.yaml). A scheduled round ingests each file (:func:`crowdloop.tasks.ingest.ingest_file`,
the same path as ``crowdloop ingest``) and then moves it aside: into ``processed/``
once stored, into ``rejected/`` with a ``<file>.error.txt`` beside it when it cannot
be stored (nothing from it is stored then). Answers are stored before their file
moves, and an answer already stored is never stored again, so a crash in between
leaves a file whose rows the next round finds already stored: no file is ingested
twice, no answer is lost.

This module only moves files within the inbox folder, which is not campaign data
(git and DVC ignore it); what is stored goes through ``ingest`` and ``store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from crowdloop.tasks import ingest, store
from crowdloop.tasks.config import Config

PROCESSED = "processed"
REJECTED = "rejected"


@dataclass(frozen=True)
class InboxReport:
    """One pass over the inbox: files ingested (now in processed/, ``source`` their new path)
    and files rejected (now in rejected/, with their error)."""

    ingested: list[ingest.Ingested] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def new(self) -> int:
        return sum(len(i.new) for i in self.ingested)


def inbox_dir(campaign: store.Campaign, cfg: Config) -> Path:
    return campaign.root / cfg.schedule.inbox


def pending(folder: Path) -> list[Path]:
    """Files waiting in ``folder`` (not in its subfolders, not hidden), oldest first."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def drain(campaign: store.Campaign, cfg: Config, *, now: datetime | None = None) -> InboxReport:
    """Ingest every pending answer file of the inbox, oldest first, and move each aside."""
    folder = inbox_dir(campaign, cfg)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    report = InboxReport()
    for path in pending(folder):
        try:
            result = ingest.ingest_file(campaign, path, classes=cfg.classes, on_change=cfg.ingest.on_change,
                                        labelstudio=cfg.labelstudio)
        except ingest.IngestError as err:
            moved = _move_aside(path, folder / REJECTED, stamp)
            moved.with_name(moved.name + ".error.txt").write_text(f"{err}\n(The file is now {moved}.)\n")
            report.rejected.append((moved, str(err)))
            continue
        moved = _move_aside(path, folder / PROCESSED, stamp)
        report.ingested.append(replace(result, source=str(moved)))
    return report


def _move_aside(path: Path, target: Path, stamp: str) -> Path:
    """Move ``path`` into ``target`` as ``<stamp>-<name>``, never over an existing file."""
    target.mkdir(parents=True, exist_ok=True)
    moved = target / f"{stamp}-{path.name}"
    counter = 1
    while moved.exists():
        moved = target / f"{stamp}-{counter}-{path.name}"
        counter += 1
    path.rename(moved)
    return moved
