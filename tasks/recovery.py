"""Crash safety: every writer holds the lock and journals itself; the next one finishes or undoes it.

A command that writes a campaign runs inside :func:`writing`: it holds the campaign
lock (:mod:`.lock`), and before it changes anything it records in
``.crowdloop/journal.json`` what it is (``ingest``, ``round``, ``rollback``, ...), the
commit it started from, and, before each annotation part file it writes, that file
(write-ahead). The journal is removed once the command's commit is made. If the
process dies in between (killed, power cut), the next writer, or ``crowdloop
verify``, finds the journal and, holding the lock, :func:`recover`\\ s:

* **ingest**: the part files it wrote are committed, under a message that names
  exactly those files and the answer files they came from; parts never written are
  dropped. Nothing is lost and nothing is stored twice.
* **round**: a round not yet committed is removed (data/ and the tracked files go back
  to the last commit, its MLflow run is marked FAILED); re-running it reuses the
  trained step. A round committed but not yet tagged or published is tagged and
  published (lineage tags, champion, push).
* **rollback**: it is finished (the user asked for it), unless it failed with an error
  (the remote unreachable, say), its round no longer has a tag, or finishing it fails: then
  data/ goes back to the last commit, and the user may run it again.
* anything else (push, pull): data/ goes back to the last commit.

Every commit has one journal and says which part files it holds
(:func:`crowdloop.tasks.version.commit`'s ``holds``), so a commit never takes in what an
interrupted command left behind.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from datetime import datetime, timezone

from crowdloop.tasks import config, ingest, journal, lineage, lock, store, version
from crowdloop.tasks.errors import CrowdloopError
from crowdloop.tasks.files import leftovers
from crowdloop.tasks.version import edits
from crowdloop.tasks.wording import count

log = logging.getLogger("crowdloop")


@contextmanager
def writing(campaign: store.Campaign, command: str, **facts):
    """Hold the campaign for ``command``: wait for the lock (up to ``lock.timeout_seconds`` of its
    params.yaml), recover what an earlier writer left unfinished, journal this command (with
    ``facts``), and remove the journal once the block ends.

    Files of data/ changed by hand are then kept aside and put back as the last commit has
    them (:mod:`crowdloop.tasks.version.edits`); the block receives ``{path under data/: where
    the hand-made version now is}``. Nested inside another ``writing`` of the same thread (the
    scheduled round's round), it only adds ``facts`` to the outer journal and receives ``{}``.
    When the block raises, what it left is recovered at once (after a signal or Ctrl-C: by
    the next command)."""
    timeout = config.load(campaign.params_file).lock.timeout_seconds
    with lock.hold(campaign, command, timeout=timeout):
        if lock.depth(campaign) > 1:
            journal.note(campaign, **facts)
            yield {}
            return
        recover(campaign)
        edited = _put_back_edits(campaign, pulling=command == "pull")
        journal.start(campaign, {"command": command, "pid": os.getpid(), "head": version.head(campaign),
                          "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), "parts": []} | facts)
        try:
            yield edited
        except Exception:
            try:
                recover(campaign, failed=True)
            except Exception as err:  # keep the command's own error; the next command tries again
                journal.note(campaign, failed=True)  # to undo what failed, not to finish it
                log.warning("could not clean up after the failure (%s); the next command will", err)
            raise
        journal.end(campaign)


def recover(campaign: store.Campaign, *, failed: bool = False) -> str | None:
    """Finish or undo what an interrupted writer left (the lock must be held); returns what was
    done, in one line, or None when nothing needed doing. ``failed``: the writer raised (rather
    than being killed), so what it was asked for is not retried."""
    entry = journal.read(campaign)
    if entry is None:
        return None
    failed = failed or entry.get("failed", False)
    version.clear_stale_locks(campaign)
    for stray in leftovers(campaign.data):
        stray.unlink()
    committed = version.head(campaign) != entry["head"]
    command = entry["command"]
    if command == "ingest" or (command == "scheduled round" and not committed and entry["parts"]):
        if not committed:  # its part files are what it stored; anything else changed in data/ is a hand's
            written = {edits.under_data(campaign, campaign.root / p["path"]) for p in entry["parts"]}
            _put_back_edits(campaign, keep=written)
        done = _finish_ingest(campaign, entry, committed)
    elif command in ("round", "scheduled round") and "round" in entry:
        done = _finish_round(campaign, entry, committed)
    elif command == "rollback":
        done = _finish_rollback(campaign, entry, committed, failed)
    elif not committed and version.restore_head(campaign):
        done = f"put data/ back as the last commit has it after an interrupted `{command}`"
    else:
        done = None  # it had changed nothing (a refused round, a file that failed its checks)
    journal.end(campaign)
    if done:
        log.warning("%s (pid %s, started %s)", done, entry.get("pid"), entry.get("since"))
    return done


def _put_back_edits(campaign: store.Campaign, keep: set[str] = frozenset(), *, pulling: bool = False) -> dict:
    moved = edits.put_back(campaign, keep=keep, pulling=pulling)
    for line in edits.describe(campaign, moved):
        log.warning("%s", line)
    return moved


def _finish_rollback(campaign: store.Campaign, entry: dict, committed: bool, failed: bool) -> str:
    target = entry["target"]
    if committed:  # killed while renaming the later rounds' tags
        version.archive_later(campaign, target)
    elif failed or version.round_tag(target) not in version.round_tags(campaign):
        version.restore_head(campaign)  # the user saw it fail (or it cannot be finished): undone whole
        return f"put data/ back as the last commit has it after a rollback to round {target} that failed"
    else:
        try:
            version.rollback(campaign, target, remote=entry.get("remote"))
        except CrowdloopError as err:  # its remote is gone, say: undone, or every later command would retry it
            version.restore_head(campaign)
            return (f"put data/ back as the last commit has it after an interrupted rollback to round {target} that "
                    f"cannot be finished now ({err}); run it again")
    return f"finished the interrupted rollback to round {target}"


def _finish_ingest(campaign: store.Campaign, entry: dict, committed: bool) -> str:
    if committed:
        return "the interrupted ingest had committed its answers"
    parts = [p for p in entry["parts"] if (campaign.root / p["path"]).is_file()]
    if not parts:
        return "put data/ back after an ingest that stored nothing" if version.restore_head(campaign) else None
    version.commit(campaign, ingest.parts_message(parts), holds=[campaign.root / p["path"] for p in parts])
    return f"committed the {count(sum(p['rows'] for p in parts), 'annotation')} an interrupted ingest had stored"


def _finish_round(campaign: store.Campaign, entry: dict, committed: bool) -> str:
    from crowdloop.tasks import record, track  # MLflow and matplotlib: only when a round needs it

    number = entry["round"]
    cfg = config.load(campaign.params_file)
    if committed and version.subject(campaign).startswith(f"Round {number}:"):
        if version.commit_of(campaign, version.round_tag(number)) != version.head(campaign):
            version.tag(campaign, version.round_tag(number))
        run_id = store.read_lineage(campaign, number).get("mlflow_run_id")
        score = store.read_round_metrics(campaign, number).get("test_accuracy", float("nan"))
        try:
            record.publish_round(campaign, number, run_id, cfg, score)
            if cfg.remote.url:
                version.push(campaign, cfg.remote.url)
        except Exception as err:  # the round is committed; what is left can be done later
            log.warning("round %d is committed, but its lineage, champion or push is not (%s)", number, err)
        return f"finished publishing round {number}, which was committed before an interruption"
    version.restore_head(campaign)
    try:
        track.fail_unfinished(campaign, number, name=lineage.campaign_name(campaign, cfg.name), uri=cfg.tracking.uri)
    except Exception as err:  # bookkeeping only: the data is already back
        log.warning("could not mark round %d's MLflow run as failed: %s", number, err)
    return f"removed round {number}, interrupted before its commit (run it again: training is cached)"
