"""Running git and DVC for :mod:`crowdloop.tasks.version`: one place that starts their processes."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

from crowdloop.tasks.errors import CrowdloopError


class VersionError(CrowdloopError):
    """A git or DVC command failed; the message holds the command and its error."""


def dvc(*commands: list[str], root: Path) -> str:
    """Run DVC commands in order, in one interpreter (DVC's start-up is most of a small
    command's time), stopping at the first that fails."""
    # The DVC of this interpreter's environment, whatever is first on PATH.
    shown = " && ".join("dvc " + " ".join(args) for args in commands)
    if len(commands) == 1:
        return run([sys.executable, "-m", "dvc", *commands[0]], root, shown=shown)
    script = ("import sys\nfrom dvc.cli import main\n"
              f"for args in {[list(c) for c in commands]!r}:\n    code = main(args)\n"
              "    if code:\n        sys.exit(code)\n")
    return run([sys.executable, "-c", script], root, shown=shown)


def run(args: list[str], root: Path, *, check_root: bool = True, ok_codes=(0,), shown: str | None = None) -> str:
    if check_root:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root,
                             capture_output=True, text=True)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
            raise VersionError(
                f"{root} is not the top of its own git repository; crowdloop commits only "
                "inside a campaign made by `crowdloop init`."
            )
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, preexec_fn=_die_with_parent)
    if proc.returncode not in ok_codes:
        shown = shown or " ".join(args)
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise VersionError(f"`{shown}` failed in {root}: {detail[-1] if detail else proc.returncode}")
    return proc.stdout


def _die_with_parent() -> None:
    """In a git or DVC child, before it starts: be killed when crowdloop dies (Linux), so a killed
    writer leaves no git or DVC process behind that goes on writing after the lock is free."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
