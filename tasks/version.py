"""The only module that talks to git and DVC.

A campaign is its own git repository; ``data/`` is one DVC-tracked directory
(``data.dvc``), ``dvc.yaml`` describes the round as a stage whose lock file
records the data hash and the params of each round, and every round is a git
commit tagged ``round-NNN``. Commands run inside the campaign only: every call
checks that the campaign root is the top of its own git repository, so nothing
is ever committed into an enclosing repository (such as crowdloop's source).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from crowdloop.tasks.errors import CrowdloopError
from crowdloop.tasks.store import Campaign

# What git tracks besides data.dvc; mlruns/ and .cache/ stay out of git.
TRACKED = ("params.yaml", "dvc.yaml", "dvc.lock", "metrics.json", "data.dvc", ".gitignore", ".dvcignore",
           ".dvc/config")
GITIGNORE = "/mlruns/\n/.cache/\n/inbox/\n/exports/\n"
REMOTE = "crowdloop"  # the DVC remote's name; its url comes from params.yaml (remote.url)
# Git identity used only when the machine has none configured (CI, fresh containers).
FALLBACK_IDENTITY = {"user.name": "crowdloop", "user.email": "crowdloop@localhost"}


class VersionError(CrowdloopError):
    """A git or DVC command failed; the message holds the command and its error."""


def round_tag(number: int) -> str:
    """The git tag of round ``number``: ``round-NNN``."""
    return f"round-{number:03d}"


def render_dvc_yaml(campaign: Campaign, param_sections: list[str]) -> str:
    """The round stage: what it reads (data, params) and the metrics it writes."""
    root = campaign.root
    stage = {
        "cmd": "crowdloop round",
        "deps": [campaign.data.relative_to(root).as_posix()],
        "params": param_sections,
        "metrics": [{campaign.metrics_file.relative_to(root).as_posix(): {"cache": False}}],
    }
    header = (
        "# Written by `crowdloop init`. crowdloop runs the round through Prefect and then\n"
        "# records it here (`dvc commit`), so `dvc params diff` and `dvc metrics diff`\n"
        "# compare any two round tags; `dvc repro` runs a round when data or params changed.\n"
    )
    return header + yaml.safe_dump({"stages": {"round": stage}}, sort_keys=False)


def init_repo(campaign: Campaign, *, param_sections: list[str]) -> None:
    """Make ``campaign.root`` its own git + DVC repository (data/ must exist)."""
    root = campaign.root
    if (root / ".git").exists():
        raise VersionError(f"{root} is already a git repository; choose a new directory.")
    _run(["git", "init", "-q", "-b", "main"], root, check_root=False)
    _ensure_identity(root)
    _dvc(["init", "-q"], ["config", "core.analytics", "false"], root=root)
    (root / ".gitignore").write_text(GITIGNORE)
    (root / "dvc.yaml").write_text(render_dvc_yaml(campaign, param_sections))


def commit(campaign: Campaign, message: str, *, tag: str | None = None) -> str:
    """Record data/ with DVC and everything tracked with git; returns the commit id."""
    root = campaign.root
    steps = [["add", "-q", campaign.data.relative_to(root).as_posix()]]
    if campaign.metrics_file.exists():
        steps.append(["commit", "-q", "-f", "round"])
    _dvc(*steps, root=root)
    present = [name for name in TRACKED if (root / name).exists()]
    _run(["git", "add", "--", *present], root)
    _run(["git", "commit", "-q", "--allow-empty", "-m", message], root)
    if tag:
        _archive_tag(root, tag)
        _run(["git", "tag", tag], root)
    return head(campaign)


def head(campaign: Campaign) -> str:
    return _run(["git", "rev-parse", "HEAD"], campaign.root).strip()


def round_tags(campaign: Campaign) -> list[str]:
    out = _run(["git", "tag", "--list", "round-*"], campaign.root)
    return sorted(t for t in out.split() if t.count("-") == 1)


def rollback(campaign: Campaign, number: int, *, remote: str | None = None) -> str:
    """Restore data/ (and metrics.json, dvc.lock) to tag ``round-NNN`` as a new commit.

    Later rounds stay in the history: their tags are renamed ``archived/round-NNN-<commit>``
    so the next rounds can take the numbers again. With a ``remote`` (a fresh clone has
    no DVC cache) the data of that round is fetched from it first. Returns the new commit id.
    """
    root = campaign.root
    _ensure_identity(root)
    tag = round_tag(number)
    if tag not in round_tags(campaign):
        known = ", ".join(round_tags(campaign)) or "none"
        raise VersionError(f"{root}: there is no round {number} to roll back to (tags: {known}).")
    restore = [n for n in ("data.dvc", "dvc.lock", "metrics.json") if _exists_at(root, tag, n)]
    _run(["git", "checkout", tag, "--", *restore], root)
    fetch = []
    if remote:
        set_remote(campaign, remote)
        fetch = [["fetch", "-q", "-r", REMOTE, "data.dvc"]]
    _dvc(*fetch, ["checkout", "-q", "--force", "data.dvc"], root=root)
    for later in round_tags(campaign):
        if int(later.split("-")[1]) > number:
            _archive_tag(root, later)
    _run(["git", "add", "--", *restore], root)
    _run(["git", "commit", "-q", "--allow-empty", "-m", f"Roll data back to {tag}"], root)
    return head(campaign)


def remote_url(campaign: Campaign, url: str) -> str:
    """``url`` as DVC takes it: a local folder relative to the campaign becomes absolute."""
    if "://" in url:
        return url
    return str((campaign.root / Path(url).expanduser()).resolve())


def set_remote(campaign: Campaign, url: str) -> None:
    """Point the campaign's default DVC remote at ``url`` (in .dvc/config.local, which git
    does not track: params.yaml stays the one place the remote is named)."""
    url = remote_url(campaign, url)
    local = campaign.root / ".dvc" / "config.local"
    if local.is_file() and f"url = {url}\n" in local.read_text():
        return  # already set; saves a DVC start-up per round
    if "://" not in url:
        Path(url).mkdir(parents=True, exist_ok=True)
    _dvc(["remote", "add", "--local", "--force", "--default", REMOTE, url], root=campaign.root)


def push(campaign: Campaign, url: str, *, all_tags: bool = False) -> None:
    """Send the DVC-tracked data to the remote at ``url`` (every round tag's with ``all_tags``)."""
    set_remote(campaign, url)
    _dvc(["push", "-q", "-r", REMOTE, *(["--all-tags"] if all_tags else [])], root=campaign.root)


def pull(campaign: Campaign, url: str) -> None:
    """Fetch what the checked-out data.dvc names from the remote and check it out into data/."""
    set_remote(campaign, url)
    _dvc(["pull", "-q", "--force", "-r", REMOTE], root=campaign.root)


def commit_of(campaign: Campaign, rev: str) -> str | None:
    """The commit ``rev`` (a tag, a branch) points at, or None when there is no such rev."""
    probe = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], cwd=campaign.root,
                           capture_output=True, text=True)
    return probe.stdout.strip() if probe.returncode == 0 else None


def data_md5(campaign: Campaign, rev: str | None = None) -> str | None:
    """DVC's hash of data/ (``outs[0].md5`` of data.dvc) at ``rev``, or in the working tree."""
    if rev is None:
        path = campaign.root / "data.dvc"
        text = path.read_text() if path.is_file() else None
    else:
        probe = subprocess.run(["git", "show", f"{rev}:data.dvc"], cwd=campaign.root,
                               capture_output=True, text=True)
        text = probe.stdout if probe.returncode == 0 else None
    if not text:
        return None
    outs = (yaml.safe_load(text) or {}).get("outs") or [{}]
    return outs[0].get("md5")


def _ensure_identity(root: Path) -> None:
    """A commit needs a git identity; use the fallback one where the machine has none."""
    for key, value in FALLBACK_IDENTITY.items():
        if not _run(["git", "config", key], root, ok_codes=(0, 1), check_root=False).strip():
            _run(["git", "config", key, value], root, check_root=False)


def _archive_tag(root: Path, tag: str) -> None:
    existing = _run(["git", "tag", "--list", tag], root).strip()
    if existing:
        commit_id = _run(["git", "rev-list", "-n", "1", tag], root).strip()
        _run(["git", "tag", f"archived/{tag}-{commit_id[:8]}", tag], root)
        _run(["git", "tag", "-d", tag], root)


def _exists_at(root: Path, rev: str, name: str) -> bool:
    probe = subprocess.run(["git", "cat-file", "-e", f"{rev}:{name}"], cwd=root, capture_output=True)
    return probe.returncode == 0


def _dvc(*commands: list[str], root: Path) -> str:
    """Run DVC commands in order, in one interpreter (DVC's start-up is most of a small
    command's time), stopping at the first that fails."""
    # The DVC of this interpreter's environment, whatever is first on PATH.
    shown = " && ".join("dvc " + " ".join(args) for args in commands)
    if len(commands) == 1:
        return _run([sys.executable, "-m", "dvc", *commands[0]], root, shown=shown)
    script = ("import sys\nfrom dvc.cli import main\n"
              f"for args in {[list(c) for c in commands]!r}:\n    code = main(args)\n"
              "    if code:\n        sys.exit(code)\n")
    return _run([sys.executable, "-c", script], root, shown=shown)


def _run(args: list[str], root: Path, *, check_root: bool = True, ok_codes=(0,), shown: str | None = None) -> str:
    if check_root:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root,
                             capture_output=True, text=True)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
            raise VersionError(
                f"{root} is not the top of its own git repository; crowdloop commits only "
                "inside a campaign made by `crowdloop init`."
            )
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True)
    if proc.returncode not in ok_codes:
        shown = shown or " ".join(args)
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise VersionError(f"`{shown}` failed in {root}: {detail[-1] if detail else proc.returncode}")
    return proc.stdout
