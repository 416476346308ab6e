"""Running git and DVC for :mod:`crowdloop.tasks.version`: one place that starts their processes."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path

from crowdloop.tasks.errors import CrowdloopError


class VersionError(CrowdloopError):
    """A git or DVC command failed; the message holds the command and its error."""


# A DVC interpreter that runs the commands it reads from stdin (one JSON list of argument lists)
# in order, stopping at the first that fails. Started ahead (``warm``), it first imports what add,
# commit and push use: importing DVC is most of a small command's time (2-4 s of a 3-5 s
# `dvc add` on a small machine).
DVC_SERVER = """import importlib, json, sys
for name in (%r if sys.argv[1:] == ["warm"] else ()):
    try:
        importlib.import_module(name)
    except Exception:
        pass
commands = json.loads(sys.stdin.readline() or "[]")
from dvc.cli import main
for args in commands:
    code = main(args)
    if code:
        sys.exit(code)
""" % (["dvc.cli", "dvc.cli.parser", "dvc.repo", "dvc.repo.add", "dvc.repo.commit", "dvc.repo.push",
        "dvc.repo.index", "dvc.repo.worktree", "dvc.repo.graph", "dvc.repo.stage", "dvc.repo.trie",
        "dvc.repo.metrics", "dvc.repo.params", "dvc.repo.artifacts", "dvc.repo.datasets", "dvc.repo.open_repo",
        "dvc.utils.strictyaml", "dvc.output", "dvc.stage", "dvc.stage.cache", "dvc.dvcfile", "dvc.data_cloud",
        "dvc.cachemgr", "dvc.ignore", "dvc.fs.dvc", "dvc.fs.data", "dvc.scm", "dvc.lock", "dvc.rwlock",
        "scmrepo.git", "dvc_data.index", "dvc_data.hashfile.build", "dvc_data.hashfile.transfer",
        "dvc_data.hashfile.checkout", "dvc_data.hashfile.db", "dvc_data.hashfile.status", "dvc_objects.fs.local",
        "dulwich.repo", "dulwich.index", "networkx", "ruamel.yaml", "rich.console", "configobj", "platformdirs"],)
_warm: dict[str, subprocess.Popen] = {}  # campaign root -> a started DVC_SERVER waiting for its commands
_tops: set[str] = set()  # roots found to be the top of their own git repository


def prewarm_dvc(root: Path) -> None:
    """Start the DVC interpreter that the next :func:`dvc` call in ``root`` will use, now, so that
    its start-up overlaps whatever comes before that call. It dies with crowdloop; unused, it
    waits (:func:`discard_prewarmed` ends it)."""
    warm = _warm.get(_key(root))
    if warm is not None and warm.poll() is None:
        return
    _warm[_key(root)] = _dvc_server(root, "warm")


def discard_prewarmed(root: Path) -> None:
    """End the DVC interpreter :func:`prewarm_dvc` started for ``root``, if it is still unused."""
    warm = _warm.pop(_key(root), None)
    if warm is not None and warm.poll() is None:
        warm.kill()
        warm.wait()


def dvc(*commands: list[str], root: Path) -> str:
    """Run DVC commands in order, in one interpreter (DVC's start-up is most of a small
    command's time; :func:`prewarm_dvc` starts it ahead), stopping at the first that fails."""
    # The DVC of this interpreter's environment, whatever is first on PATH.
    shown = " && ".join("dvc " + " ".join(args) for args in commands)
    server = _warm.pop(_key(root), None)
    if server is not None and server.poll() is not None:  # it died (killed from outside): start one now
        server = None
    _check_top(root)
    server = server or _dvc_server(root)
    out, err = server.communicate(json.dumps([list(c) for c in commands]) + "\n")
    return _checked(server.returncode, out, err, shown=shown, root=root)


def _dvc_server(root: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DVC_SERVER, *flags], cwd=root, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)


def run(args: list[str], root: Path, *, check_root: bool = True, ok_codes=(0,), shown: str | None = None) -> str:
    if check_root:
        _check_top(root)
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, preexec_fn=_die_with_parent)
    return _checked(proc.returncode, proc.stdout, proc.stderr, shown=shown or " ".join(args), root=root,
                    ok_codes=ok_codes)


def _checked(code: int, out: str, err: str, *, shown: str, root: Path, ok_codes=(0,)) -> str:
    if code not in ok_codes:
        detail = (err or out).strip().splitlines()
        raise VersionError(f"`{shown}` failed in {root}: {detail[-1] if detail else code}")
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
