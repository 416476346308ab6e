"""Answers arriving in a campaign's inbox folder, and whether a scheduled round should run.

People (or a labelling tool) drop answer files — CSV, TSV or JSONL, as for
``crowdloop ingest`` — into the campaign's inbox (``schedule.inbox`` in
params.yaml). A scheduled round stores each file's new answers and then moves the
file aside: into ``processed/`` once stored, into ``rejected/`` with a
``<file>.error.txt`` beside it when it cannot be stored (nothing from it is
stored then). Answers are stored before their file moves, and an answer already
stored is never stored again, so a crash in between leaves a file whose rows the
next round finds already stored: no file is ingested twice, no answer is lost.

Campaign data is written through ``store``; this module only moves files
within the inbox folder, which is not campaign data (git and DVC ignore it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from crowdloop.tasks import ingest, store
from crowdloop.tasks.config import Config

PROCESSED = "processed"
REJECTED = "rejected"


@dataclass(frozen=True)
class Stored:
    """What one answer file added to the campaign."""

    path: Path
    new: int             # annotations stored
    already_stored: int  # answered rows identical to stored annotations
    unanswered: int      # rows with an empty label
    round: int           # the round whose batch the answers are filed under


@dataclass(frozen=True)
class InboxReport:
    """One pass over the inbox: files stored (and moved to processed/) and files rejected."""

    stored: list[Stored] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)  # (moved file, error)

    @property
    def new(self) -> int:
        return sum(s.new for s in self.stored)


@dataclass(frozen=True)
class Decision:
    """Whether a scheduled round runs, and the one-line reason shown in Prefect and the logs."""

    run: bool
    reason: str


def store_answer_file(campaign: store.Campaign, cfg: Config, path: Path) -> Stored:
    """Validate one answer file against the campaign and store its new answers.

    Raises :class:`~crowdloop.tasks.ingest.IngestError` (naming file and line) before
    anything is stored when any row is unusable.
    """
    stored = store.read_annotations(campaign)
    answers = ingest.read_answer_file(path)
    result = ingest.validate_answers(answers, source=str(path), examples=store.read_examples(campaign),
                                     stored=stored, classes=cfg.classes)
    rounds = store.completed_rounds(campaign)
    number = rounds[-1] if rounds else 0
    if len(result.new):
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = result.new.assign(round=number, source=f"ingest:{path.name}", time=now)
        store.append_annotations(campaign, rows, source=f"ingest-{path.stem}")
    return Stored(Path(path), len(result.new), result.already_stored, result.unanswered, number)


def inbox_dir(campaign: store.Campaign, cfg: Config) -> Path:
    return campaign.root / cfg.schedule.inbox


def pending(folder: Path) -> list[Path]:
    """Files waiting in ``folder`` (not in its subfolders, not hidden), oldest first."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def drain(campaign: store.Campaign, cfg: Config, *, now: datetime | None = None) -> InboxReport:
    """Store every pending answer file of the inbox, oldest first, and move each aside."""
    folder = inbox_dir(campaign, cfg)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    report = InboxReport()
    for path in pending(folder):
        try:
            stored = store_answer_file(campaign, cfg, path)
        except ingest.IngestError as err:
            moved = _move_aside(path, folder / REJECTED, stamp)
            moved.with_name(moved.name + ".error.txt").write_text(f"{err}\n")
            report.rejected.append((moved, str(err)))
            continue
        moved = _move_aside(path, folder / PROCESSED, stamp)
        report.stored.append(Stored(moved, stored.new, stored.already_stored, stored.unanswered, stored.round))
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


def answered(batch_ids: pd.Series, annotations: pd.DataFrame, number: int) -> int:
    """How many of round ``number``'s requests (``batch_ids``, one per example) have an answer
    filed under that round (whoever gave it)."""
    back = set(annotations.loc[annotations["round"] == number, "example_id"].astype(str))
    return int(batch_ids.astype(str).isin(back).sum())


def decide(*, rounds: list[int], asked: int, back: int, min_answered: float, force: bool,
           stopped: str | None = None) -> Decision:
    """Run a round when forced, when none has run yet, or when at least one answer and at
    least ``min_answered`` of the last batch's ``asked`` requests are back; else skip.

    ``stopped``: the stopping rule's reason when it fired in the last round; the
    campaign then skips every scheduled round until forced.
    """
    if force:
        return Decision(True, "forced")
    if not rounds:
        return Decision(True, "first round: nothing to wait for")
    last = rounds[-1]
    if stopped:
        return Decision(False, f"the stopping rule fired in round {last} ({stopped}); "
                               "raise the budget or stopping.rounds in params.yaml, or run with force")
    if asked == 0:
        return Decision(False, f"round {last} asked for nothing (every example has its labels); "
                               "nothing to wait for, run with force to train again")
    share = back / asked
    wanted = f"{back} of {asked} answers to round {last}'s batch are back ({share:.0%}; " \
             f"schedule.min_answered is {min_answered:.0%})"
    return Decision(back > 0 and share >= min_answered, wanted)
