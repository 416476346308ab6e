"""The journal of the command that is writing a campaign: ``.crowdloop/journal.json``.

What the command is (``ingest``, ``round``, ``rollback``, ...), the commit it started
from, and, before each annotation part file it writes, that file (write-ahead), so
that if its process dies the next writer knows exactly what it left
(:mod:`crowdloop.tasks.recovery`). Only :mod:`.recovery` starts and ends a journal;
the steps add to it with :func:`note` and :func:`part`.
"""

from __future__ import annotations

import json
from pathlib import Path

from crowdloop.tasks import lock, store
from crowdloop.tasks.files import remove, write_text_atomic

JOURNAL_FILE = "journal.json"


def start(campaign: store.Campaign, entry: dict) -> None:
    """Begin the journal of a command (``entry``: command, pid, head, since, parts, ...)."""
    _write(campaign, entry)


def end(campaign: store.Campaign) -> None:
    remove(_path(campaign))


def note(campaign: store.Campaign, **facts) -> None:
    """Add ``facts`` (e.g. ``round=3``) to the running command's journal."""
    entry = read(campaign)
    if entry is not None:  # outside `writing` (tests, tools) there is nothing to recover later
        _write(campaign, entry | facts)


def part(campaign: store.Campaign, path: Path, *, source: str, rows: int, round: int) -> None:
    """Record an annotation part file about to be written (before it is, so an interrupted write is known)."""
    entry = read(campaign)
    if entry is not None:
        about = {"path": path.relative_to(campaign.root).as_posix(), "source": source, "rows": rows, "round": round}
        _write(campaign, entry | {"parts": [*entry["parts"], about]})


def checkpoint(campaign: store.Campaign, head: str) -> None:
    """A commit (``head``) inside a longer command (the scheduled round's answers) is made: recovery starts from it."""
    note(campaign, head=head, parts=[])


def read(campaign: store.Campaign) -> dict | None:
    """The unfinished command's journal, or None."""
    try:
        return json.loads(_path(campaign).read_text())
    except FileNotFoundError:
        return None


def _path(campaign: store.Campaign) -> Path:
    return campaign.state_dir / JOURNAL_FILE


def _write(campaign: store.Campaign, entry: dict) -> None:
    write_text_atomic(lock.state_folder(campaign) / JOURNAL_FILE, json.dumps(entry, indent=1) + "\n")
