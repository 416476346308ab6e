"""One writer at a time: the campaign lock waits, names who holds it, is re-entrant, and dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from crowdloop.tasks import lock
from crowdloop.tasks.store import Campaign


def _hold_in_thread(campaign, command, release: threading.Event, held: threading.Event):
    with lock.hold(campaign, command, timeout=5):
        held.set()
        release.wait(10)


def test_a_second_writer_waits_then_fails_with_one_line_naming_the_holder(tmp_path):
    camp = Campaign(tmp_path)
    release, held = threading.Event(), threading.Event()
    other = threading.Thread(target=_hold_in_thread, args=(camp, "scheduled round", release, held))
    other.start()
    held.wait(5)
    start = time.monotonic()
    with pytest.raises(lock.LockedError) as err:
        with lock.hold(camp, "ingest", timeout=0.5):
            pass
    release.set()
    other.join()
    message = str(err.value)
    assert time.monotonic() - start >= 0.5
    assert "`scheduled round`" in message and f"pid {os.getpid()}" in message and "since 20" in message
    assert "lock.timeout_seconds" in message and "\n" not in message
    with lock.hold(camp, "ingest", timeout=0.5):  # free again once the holder is done
        assert lock.depth(camp) == 1


def test_the_lock_is_reentrant_in_one_thread_and_invisible_to_git(tmp_path):
    camp = Campaign(tmp_path)
    with lock.hold(camp, "scheduled round", timeout=0):
        with lock.hold(camp, "round", timeout=0):
            assert lock.depth(camp) == 2
            assert lock.busy(camp) is None  # this thread holds it: not busy for itself
        assert lock.depth(camp) == 1
    assert lock.depth(camp) == 0
    assert (camp.state_dir / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_killed_holder_leaves_the_campaign_free(tmp_path):
    script = ("import sys, time\nfrom pathlib import Path\nfrom crowdloop.tasks import lock\n"
              "from crowdloop.tasks.store import Campaign\n"
              "with lock.hold(Campaign(Path(sys.argv[1])), 'round', timeout=5):\n"
              "    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        camp = Campaign(tmp_path)
        assert lock.busy(camp)["command"] == "round" and lock.busy(camp)["pid"] == holder.pid
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with lock.hold(camp, "ingest", timeout=5):  # the OS released it with the process
            assert lock.holder(camp)["command"] == "ingest"
    finally:
        holder.kill()
        holder.wait()


def test_a_caller_that_does_not_wait_logs_no_waiting_line(tmp_path, caplog):
    camp = Campaign(tmp_path)
    release, held = threading.Event(), threading.Event()
    other = threading.Thread(target=_hold_in_thread, args=(camp, "round", release, held))
    other.start()
    held.wait(5)
    caplog.set_level("INFO", logger="crowdloop")
    try:
        with pytest.raises(lock.LockedError, match="`round`"):
            with lock.hold(camp, "verify", timeout=0):  # as `crowdloop verify` holds it: never waits
                pass
    finally:
        release.set()
        other.join()
    assert not [r for r in caplog.records if "waiting" in r.getMessage()]  # was "waiting ... (up to 0 s, ...)"
