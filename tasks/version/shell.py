"""Running git and DVC for :mod:`crowdloop.tasks.version`: one place that starts their processes."""

from __future__ import annotations

import contextlib
import ctypes
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from crowdloop.tasks.errors import CrowdloopError


class VersionError(CrowdloopError):
    """A git or DVC command failed; the message holds the command and its error."""


# A DVC interpreter that runs the batches of commands it reads from stdin (a JSON list of argument
# lists a line), each in order and stopping at the first that fails, and answers each batch with
# its exit code on a line of stdout; DVC's own output goes to stderr. At the end of its input it
# exits at once (os._exit: the interpreter's teardown took 0.2 s that the caller waited for).
# Started ahead (``warm``), it first imports what add, commit and push use: importing DVC is most
# of a small command's time (2-4 s of a 3-5 s `dvc add` on a small machine). A round's commit and
# its push share one.
DVC_SERVER = """import importlib, json, os, sys
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
for name in (%r if sys.argv[1:] == ["warm"] else ()):
    try:
        importlib.import_module(name)
    except Exception:
        pass
import logging, dvc.logger
from dvc.cli import main
quiet = dvc.logger.set_loggers_level  # -q keeps DVC's errors (to the log read back on a failure), not only its footer
dvc.logger.set_loggers_level = lambda level: quiet(min(level, logging.ERROR))
for line in sys.stdin:
    code = 0
    for args in json.loads(line):
        code = main(args)
        if code:
            break
    sys.stdout.flush()
    sys.stderr.flush()
    replies.write(f"{code}\\n")
    replies.flush()
os._exit(0)
""" % (["dvc.cli", "dvc.cli.parser", "dvc.repo", "dvc.repo.add", "dvc.repo.commit", "dvc.repo.push",
        "dvc.repo.index", "dvc.repo.worktree", "dvc.repo.graph", "dvc.repo.stage", "dvc.repo.trie",
        "dvc.repo.metrics", "dvc.repo.params", "dvc.repo.artifacts", "dvc.repo.datasets", "dvc.repo.open_repo",
        "dvc.utils.strictyaml", "dvc.output", "dvc.stage", "dvc.stage.cache", "dvc.dvcfile", "dvc.data_cloud",
        "dvc.cachemgr", "dvc.ignore", "dvc.fs.dvc", "dvc.fs.data", "dvc.scm", "dvc.lock", "dvc.rwlock",
        "scmrepo.git", "dvc_data.index", "dvc_data.hashfile.build", "dvc_data.hashfile.transfer",
        "dvc_data.hashfile.checkout", "dvc_data.hashfile.db", "dvc_data.hashfile.status", "dvc_objects.fs.local",
        "dulwich.repo", "dulwich.index", "networkx", "ruamel.yaml", "rich.console", "configobj", "platformdirs"],)


class _Interpreter:
    """A started DVC_SERVER in a campaign root: :meth:`run` sends it a batch of commands and waits
    for its exit code; what DVC printed goes to an unlinked temporary file this side reads back."""

    def __init__(self, root: Path, *flags: str):
        with tempfile.NamedTemporaryFile(prefix="crowdloop-dvc-", suffix=".log", delete=False) as handle:
            path = Path(handle.name)
        try:
            with open(path, "ab") as log:  # O_APPEND: the server's writes land at the end whatever we read
                self._output = open(path, "rb")
                try:
                    self._proc = subprocess.Popen([sys.executable, "-c", DVC_SERVER, *flags], cwd=root,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                                  text=True, preexec_fn=_die_with_parent)
                except BaseException:
                    self._output.close()
                    raise
        finally:
            path.unlink(missing_ok=True)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(self, commands: Sequence[Sequence[str]]) -> tuple[int, str]:
        """Run ``commands`` in order; returns the exit code of the last one run and DVC's output."""
        try:
            self._proc.stdin.write(json.dumps([list(c) for c in commands]) + "\n")
            self._proc.stdin.flush()
            reply = self._proc.stdout.readline()
        except OSError:  # BrokenPipeError: it is gone
            reply = ""
        if not reply.strip():  # it died (killed from outside, or DVC crashed it)
            code = self._proc.wait() or 1
        else:
            code = int(reply)
        return code, self._output.read().decode(errors="replace")

    def close(self, *, kill: bool = False) -> None:
        """End it: at once (``kill``) or once it has read to the end of its input."""
        if kill and self.alive():
            self._proc.kill()
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        self._proc.wait()
        self._proc.stdout.close()
        self._output.close()


DVC_HELP = "Having any troubles?"  # DVC's closing line after an error ("... Hit us up at https://dvc.org/support")
_warm: dict[str, _Interpreter] = {}  # campaign root -> a started DVC interpreter waiting for commands
_tops: set[str] = set()  # roots found to be the top of their own git repository


def prewarm_dvc(root: Path) -> None:
    """Start the DVC interpreter that the next :func:`dvc` call in ``root`` will use, now, so that
    its start-up overlaps whatever comes before that call. It dies with crowdloop; unused, it
    waits (:func:`discard_prewarmed` ends it)."""
    _warm[_key(root)] = _take_waiting(root) or _Interpreter(root, "warm")


def _take_waiting(root: Path) -> _Interpreter | None:
    """The interpreter waiting in ``root``, out of the registry; None if there is none, or it died
    (killed from outside: it is reaped, and the caller starts another)."""
    waiting = _warm.pop(_key(root), None)
    if waiting is not None and not waiting.alive():
        waiting.close()
        return None
    return waiting


def discard_prewarmed(root: Path) -> None:
    """End the DVC interpreter waiting in ``root`` (:func:`prewarm_dvc`, or one a ``keep`` call
    left), if there is one."""
    warm = _warm.pop(_key(root), None)
    if warm is not None:
        warm.close(kill=True)


def dvc(*commands: list[str], root: Path, keep: bool = False) -> str:
    """Run DVC commands in order, in one interpreter (DVC's start-up is most of a small
    command's time; :func:`prewarm_dvc` starts it ahead), stopping at the first that fails;
    returns what DVC printed. ``keep``: when they succeed, the interpreter waits in ``root`` for
    the next call (a round's push after its commit) instead of ending."""
    # DVC from this interpreter's environment (sys.executable), not whatever `dvc` is first on PATH.
    shown = " && ".join("dvc " + " ".join(args) for args in commands)
    server = _take_waiting(root)
    _check_top(root)
    server = server or _Interpreter(root)
    code, output = server.run(commands)
    if keep and code == 0 and server.alive():
        _warm[_key(root)] = server
    else:
        server.close(kill=code != 0)
    return _checked(code, "", output, shown=shown, root=root)


def run(args: list[str], root: Path, *, check_root: bool = True, ok_codes=(0,), shown: str | None = None) -> str:
    if check_root:
        _check_top(root)
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, preexec_fn=_die_with_parent)
    return _checked(proc.returncode, proc.stdout, proc.stderr, shown=shown or " ".join(args), root=root,
                    ok_codes=ok_codes)


def _checked(code: int, out: str, err: str, *, shown: str, root: Path, ok_codes=(0,)) -> str:
    if code not in ok_codes:
        # DVC ends its output with an invitation to its support chat: the error is its last ERROR line
        detail = [line for line in (err or out).strip().splitlines() if line.strip() and not line.startswith(DVC_HELP)]
        errors = [line for line in detail if line.startswith("ERROR")]
        raise VersionError(f"`{shown}` failed in {root}: {(errors or detail or [code])[-1]}")
    return out


def _check_top(root: Path) -> None:
    """Fail unless ``root`` is the top of its own git repository (asked of git once per root and process)."""
    if _key(root) in _tops:
        return
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
        raise VersionError(
            f"{root} is not the top of its own git repository; crowdloop commits only "
            "inside a campaign made by `crowdloop init`."
        )
    _tops.add(_key(root))


def _key(root: Path) -> str:
    return str(Path(root).resolve())


def _die_with_parent() -> None:
    """In a git or DVC child, before it starts: be killed when crowdloop dies (Linux), so a killed
    writer leaves no git or DVC process behind that goes on writing after the lock is free."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
