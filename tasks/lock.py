"""One writer at a time: the campaign lock.

Every command that writes a campaign (a round, ingest, rollback, push, pull, the
scheduled round) holds ``.crowdloop/lock`` while it runs. It is an OS file lock
(``filelock``, flock on POSIX), so it is released when its process ends, however it
ends: a killed writer never leaves a campaign locked. The holder writes who it is
(command, pid, host, since when) to ``.crowdloop/holder.json``, so a second writer
that waits longer than ``lock.timeout_seconds`` fails with one line naming it.

The lock is re-entrant within a thread (the scheduled round holds it around the round
it runs) and exclusive between threads and processes. Readers (``status``,
``history``) never take it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

import filelock

from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.files import write_text_atomic
from crowdloop.tasks.store import Campaign

log = logging.getLogger("crowdloop")
LOCK_FILE = "lock"
HOLDER_FILE = "holder.json"
_depth: dict[tuple[str, int], int] = {}  # (lock file, thread id) -> how deep that thread holds it


class LockedError(CampaignError):
    """Another writer held the campaign for longer than ``lock.timeout_seconds``."""


@contextmanager
def hold(campaign: Campaign, command: str, *, timeout: float):
    """Hold the campaign's lock for ``command`` (e.g. ``"round"``), waiting up to ``timeout``
    seconds for another writer to finish; raises :class:`LockedError` naming that writer."""
    path = state_folder(campaign) / LOCK_FILE
    key = _key(campaign)
    if _depth.get(key):
        _depth[key] += 1
        try:
            yield
        finally:
            _depth[key] -= 1
        return
    file_lock = filelock.FileLock(path, thread_local=False)
    try:
        file_lock.acquire(timeout=0)
    except filelock.Timeout:
        if timeout > 0:  # a caller that does not wait (verify) says so in its own words
            log.info("waiting for the campaign: %s holds it (up to %g s, lock.timeout_seconds)",
                     describe(holder(campaign)), timeout)
        try:
            file_lock.acquire(timeout=timeout)
        except filelock.Timeout:
            raise LockedError(f"{campaign.root.resolve()} is busy: {describe(holder(campaign))} holds its lock "
                              f"({path}); waited {timeout:g} s (lock.timeout_seconds in params.yaml), "
                              "try again once it has finished.") from None
    _depth[key] = 1
    try:
        write_text_atomic(path.with_name(HOLDER_FILE), json.dumps({
            "command": command, "pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}) + "\n")
        yield
    finally:
        del _depth[key]
        file_lock.release()


def depth(campaign: Campaign) -> int:
    """How many nested :func:`hold` of this thread hold the campaign's lock (0: not held)."""
    return _depth.get(_key(campaign), 0)


def _key(campaign: Campaign) -> tuple[str, int]:
    return str((campaign.state_dir / LOCK_FILE).resolve()), threading.get_ident()


def busy(campaign: Campaign) -> dict | None:
    """The holder (as :func:`holder`) when another process or thread holds the lock now; None when it is free."""
    if depth(campaign) or not (campaign.state_dir / LOCK_FILE).exists():
        return None
    probe = filelock.FileLock(campaign.state_dir / LOCK_FILE, thread_local=False)
    try:
        probe.acquire(timeout=0)
    except filelock.Timeout:
        return holder(campaign) or {}
    probe.release()
    return None


def holder(campaign: Campaign) -> dict:
    """What the last holder wrote about itself: command, pid, host, since ({} if unknown)."""
    try:
        return json.loads((campaign.state_dir / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return {}


def describe(who: dict) -> str:
    if not who:
        return "another writer"
    return f"`{who.get('command')}` (pid {who.get('pid')} on {who.get('host')}, since {who.get('since')})"


def state_folder(campaign: Campaign):
    """``.crowdloop/``, made on first use with a .gitignore of its own, so git never sees it."""
    folder = campaign.state_dir
    if not (folder / ".gitignore").is_file():
        write_text_atomic(folder / ".gitignore", "# crowdloop's lock and journal: never committed\n*\n")
    return folder

