"""Kill points for the crash tests, and a warm process that forks the commands to kill.

``python crashkit.py`` imports crowdloop and everything a round needs, starts Prefect's
temporary server, then reads jobs from stdin, one JSON list a line. It forks a child
per job, which runs ``crowdloop <args>`` (crowdloop.cli.main) and SIGKILLs itself when it
reaches the job's kill point, and answers with one JSON line: each child's exit status
(``-9``: killed at its point; ``None``: the point was never reached and the command
finished). Forking a warm process saves the 10-20 s a fresh interpreter spends importing
per kill; a child is still a process of its own, killed for real.

A kill point is injected into the child only (nothing in crowdloop knows about it):
either a log line of crowdloop's (``log:<text>``) or a function that is wrapped to kill
the process before (or after) it runs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _wrap(owner, name: str, *, after: bool = False, when=lambda *args, **kwargs: True, delay: float | None = None):
    """Replace ``owner.name`` by a function that dies before (or ``after``) calling it, when ``when``
    holds; with ``delay``, it dies that many seconds into the call (mid-way through it)."""
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        hit = when(*args, **kwargs)
        if hit and delay is not None:
            threading.Timer(delay, _die).start()
        elif hit and not after:
            _die()
        result = real(*args, **kwargs)
        if hit and after:
            _die()
        return result

    setattr(owner, name, wrapper)


def _slow(owner, name: str, seconds: float):
    """Replace ``owner.name`` by a function that waits ``seconds`` before calling it."""
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        time.sleep(seconds)
        return real(*args, **kwargs)

    setattr(owner, name, wrapper)


def _git(verb: str):
    return lambda args, *rest, **kw: args[:2] == ["git", verb]


def _dvc(verb: str):
    return lambda *commands, **kw: any(c[0] == verb for c in commands)


def _on_log(text: str):
    class Killer(logging.Handler):
        def emit(self, record):
            if text in record.getMessage():
                _die()

    logging.getLogger("crowdloop").addHandler(Killer())


def install(point: str) -> None:
    """Arm kill point ``point`` in this process (see POINTS)."""
    if point.startswith("log:"):
        _on_log(point[4:])
        return
    from mlflow.tracking import MlflowClient

    from crowdloop.tasks import journal, store, track, version

    wraps = {
        "save:mid": (store, "write_parquet_atomic", {"when": lambda path, frame: path.name == "consensus.parquet"}),
        "save:done": (track, "log_round", {}),
        "track:mid": (MlflowClient, "log_artifact", {}),
        "track:done": (store, "write_lineage", {"after": True}),
        # 0.1 s: a round starts its DVC interpreter ahead (version.prewarm_dvc), so its add is quick
        "commit:mid-dvc": (version, "dvc", {"when": _dvc("add"), "delay": 0.1}),
        "commit:dvc-done": (version, "run", {"when": _git("add")}),
        "commit:git-added": (version, "run", {"when": _git("commit")}),
        "commit:before-tag": (version, "run", {"when": _git("tag")}),
        "publish:mid": (track, "set_tags", {}),
        "publish:push": (version, "push", {}),
        "ingest:before-part": (store, "append_annotations", {}),
        "ingest:part-written": (version, "commit", {}),
        "ingest:committed": (journal, "end", {}),
        "rollback:files": (version, "dvc", {"when": _dvc("checkout")}),
        "rollback:data": (version, "run", {"when": lambda args, *r, **k: args[:2] == ["git", "tag"]
                                           and args[2].startswith("archived/")}),
        "rollback:commit": (version, "run", {"when": _git("commit")}),
    }
    owner, name, options = wraps[point]
    _wrap(owner, name, **options)


def _child(job: dict) -> None:
    try:
        if job.get("point"):
            install(job["point"])
        if job.get("hold_s"):  # keep the campaign's lock that much longer: the round's MLflow step waits
            from crowdloop.tasks import track

            _slow(track, "log_round", job["hold_s"])
        from crowdloop import cli

        log = open(job["log"], "a")  # stdout is the answer pipe: the child writes to its log only
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        if job.get("flow") == "scheduled":  # what `crowdloop deploy` runs on its schedule, forced
            from crowdloop.flows.scheduled import scheduled_round

            code = 0 if scheduled_round(job["dir"], force=True, return_state=True).is_completed() else 1
        else:
            code = cli.main(job["args"])
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 3
    sys.stderr.flush()
    os._exit(code if job.get("point") is None else 100 + code)  # 100+: the point was never reached


def main() -> None:
    import crowdloop.api  # noqa: F401  (warm: everything a round, an ingest and verify import)
    import crowdloop.flows.round  # noqa: F401
    import crowdloop.flows.scheduled  # noqa: F401
    import crowdloop.integrity  # noqa: F401
    import mlflow.tracking  # noqa: F401
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # one temporary Prefect server that every child uses
    server.start()
    print(json.dumps({"ready": server.api_url}), flush=True)
    try:
        for line in sys.stdin:
            pids = []
            for job in json.loads(line):
                if job.get("after_lock"):
                    from crowdloop.tasks import lock, store

                    campaign = store.Campaign(Path(job["after_lock"]))
                    deadline = time.monotonic() + 120
                    while lock.busy(campaign) is None and time.monotonic() < deadline:
                        time.sleep(0.05)
                pid = os.fork()
                if pid == 0:
                    _child(job)
                pids.append(pid)
            statuses = []
            for pid in pids:
                _, status = os.waitpid(pid, 0)
                statuses.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
            print(json.dumps(statuses), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
