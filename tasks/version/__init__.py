"""The only package that talks to git and DVC (``shell`` runs them, ``recorded`` reads what they recorded).

A campaign is its own git repository; ``data/`` is one DVC-tracked directory
(``data.dvc``), ``dvc.yaml`` describes the round as a stage whose lock file
records the data hash and the params of each round, and every round is a git
commit tagged ``round-NNN``. Commands run inside the campaign only: every call
checks that the campaign root is the top of its own git repository, so nothing
is ever committed into an enclosing repository (such as crowdloop's source).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import yaml

from crowdloop.tasks.errors import ConfigError
from crowdloop.tasks.store import Campaign
from crowdloop.tasks.version.edits import EDITED, kept_version, under_data
from crowdloop.tasks.version.recorded import (cache_object, changed_data, commit_of, data_listing, data_md5, dirty, exists_at,
                                              head, read_listing, remote_object, round_tags, stored_object, subject)
from crowdloop.tasks.version.remote import (REMOTE, check_holds, lacking, pull, push, remote_folder, remote_url,
                                            set_remote)
from crowdloop.tasks.version.shell import VersionError, discard_prewarmed, dvc, prewarm_dvc, run
from crowdloop.tasks.wording import count

__all__ = ["EDITED", "TRACKED", "WRITTEN", "VersionError", "archive_later", "at_round", "cache_object", "changed_data", "clear_stale_locks", "commit", "commit_of", "data_listing",
           "data_md5", "dirty", "discard_prewarmed", "head", "init_repo", "kept_version", "later_tags", "prewarm_dvc", "pull", "push", "read_listing",
           "remote_folder", "remote_object", "remote_url", "restore_head", "rollback", "round_tag", "round_tags", "set_remote", "stored_object", "subject",
           "tag"]

# What git tracks besides data.dvc; mlruns/ and .cache/ stay out of git.
SETTINGS = "params.yaml"
TRACKED = (SETTINGS, "dvc.yaml", "dvc.lock", "metrics.json", "data.dvc", ".gitignore", ".dvcignore",
           ".dvc/config")
WRITTEN = ("data.dvc", "dvc.lock", "metrics.json")  # tracked files only crowdloop writes (never params.yaml)
GITIGNORE = f"/mlruns/\n/.cache/\n/inbox/\n/exports/\n/{EDITED}/\n"
# Git identity used only when the machine has none configured (CI, fresh containers).
FALLBACK_IDENTITY = {"user.name": "crowdloop", "user.email": "crowdloop@localhost"}


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
    run(["git", "init", "-q", "-b", "main"], root, check_root=False)
    _ensure_identity(root)
    dvc(["init", "-q"], ["config", "core.analytics", "false"], root=root)
    (root / ".gitignore").write_text(GITIGNORE)
    (root / "dvc.yaml").write_text(render_dvc_yaml(campaign, param_sections))


def commit(campaign: Campaign, message: str, *, tag: str | None = None, holds: Sequence[Path] | None = None,
           push_next: bool = False) -> str:
    """Record data/ with DVC and everything tracked with git; returns the commit id.

    ``holds``: the files and folders under data/ this commit adds (its annotation part
    files, a round's folder). They are named in the message, and any other change of
    data/ since the last commit is refused (VersionError), so a commit never takes in
    what an interrupted command left behind under its own name. An edit of params.yaml goes in
    with the next commit, whatever it is for; the message then says so. ``push_next``: a push comes
    next (a round's); the DVC interpreter, already started, waits for it instead of ending.
    """
    root = campaign.root
    if holds is not None:
        names = [under_data(campaign, p) for p in holds]
        stray = [name for name in changed_data(campaign)
                 if not any(name == n or name.startswith(n.rstrip("/") + "/") for n in names)]
        if stray:
            raise VersionError(f"{campaign.data}: {stray[0]} changed since the last commit but is not part of "
                               f"this one ({count(len(stray), 'such file')}); run `crowdloop verify` to see what "
                               "happened.")
        message += "\n\nHolds: " + ", ".join(f"data/{n}" for n in names)
    if SETTINGS in dirty(campaign):  # an edit of the settings goes in with whatever commit comes next: say so
        message += f"\n\nAlso records {SETTINGS}, changed since the last commit."
    steps = [["add", "-q", campaign.data.relative_to(root).as_posix()]]
    if campaign.metrics_file.exists():
        steps.append(["commit", "-q", "-f", "round"])
    dvc(*steps, root=root, keep=push_next)
    present = [name for name in TRACKED if (root / name).exists()]
    run(["git", "add", "--", *present], root)
    run(["git", "commit", "-q", "--allow-empty", "-m", message], root)
    if tag:
        _archive_tag(root, tag)
        run(["git", "tag", tag], root)
    return head(campaign)


def check_param_sections(campaign: Campaign) -> None:
    """Fail (ConfigError) when params.yaml lacks a section that dvc.yaml's round stage lists: the
    settings load without it (the template's values), but DVC refuses to record the round."""
    dvc_yaml = campaign.root / "dvc.yaml"
    if not dvc_yaml.is_file():  # not a campaign crowdloop made; DVC says what it misses
        return
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages") or {}
    listed = (stages.get("round") or {}).get("params") or []
    present = yaml.safe_load(campaign.params_file.read_text()) or {}
    missing = [name for name in listed if isinstance(name, str) and name not in present]
    if missing:
        raise ConfigError(f"{campaign.params_file}: {count(len(missing), 'section')} missing ({', '.join(missing)}); "
                          "DVC records each round's settings section by section (dvc.yaml lists them), so put "
                          f"{'it' if len(missing) == 1 else 'them'} back from the template "
                          "(crowdloop/templates/params.yaml); a section of keys may be left empty, e.g. "
                          "`routing: {}`, to take the template's values.")


def tag(campaign: Campaign, name: str) -> None:
    """Tag HEAD ``name`` (a round tag already there is archived first)."""
    _archive_tag(campaign.root, name)
    run(["git", "tag", name], campaign.root)


def restore_head(campaign: Campaign) -> bool:
    """Put data/ and the files crowdloop writes (WRITTEN) back exactly as the last commit has them
    (an interrupted command's changes go): data/ from the DVC cache. A user's edits of
    params.yaml stay. Returns whether anything had changed."""
    root = campaign.root
    clear_stale_locks(campaign)
    if not changed_data(campaign) and not any(name in WRITTEN for name in dirty(campaign)):
        return False
    restore_written(campaign)
    dvc(["checkout", "-q", "--force", "data.dvc"], root=root)
    return True


def restore_written(campaign: Campaign) -> None:
    """The files only crowdloop writes (WRITTEN: data.dvc, dvc.lock, metrics.json) as the last commit
    has them; one it does not have is removed (data.dvc aside: a campaign always has one)."""
    root = campaign.root
    present = [name for name in WRITTEN if exists_at(root, "HEAD", name)]
    if present:
        run(["git", "reset", "-q", "--", *present], root)
        run(["git", "checkout", "HEAD", "--", *present], root)
    for name in WRITTEN:  # written by the interrupted command, never committed: not there before it either
        if name not in present and name != "data.dvc":
            run(["git", "rm", "-q", "--cached", "--ignore-unmatch", "--", name], root)
            (root / name).unlink(missing_ok=True)


def clear_stale_locks(campaign: Campaign) -> None:
    """Remove the lock files a git command killed mid-way leaves (index.lock, ref locks), and DVC's
    read/write lock file when a DVC command killed while writing it left it unreadable: DVC then
    refuses every command ("RWLock-file ... JSON structure is corrupted") until it is gone, and
    remakes it. A readable one stays (DVC itself drops the entries of processes that are gone).
    Only called with the campaign lock held, when no git or DVC process of crowdloop's can be running."""
    git_dir = campaign.root / ".git"
    for stale in [git_dir / "index.lock", git_dir / "HEAD.lock", git_dir / "packed-refs.lock",
                  *(git_dir / "refs").rglob("*.lock")]:
        stale.unlink(missing_ok=True)
    rwlock = campaign.root / ".dvc" / "tmp" / "rwlock"
    try:
        json.loads(rwlock.read_text())
    except FileNotFoundError:
        pass
    except (ValueError, UnicodeDecodeError):
        rwlock.unlink(missing_ok=True)


def check_rollback_target(campaign: Campaign, number: int, *, remote: str | None = None) -> None:
    """VersionError unless round ``number`` has a tag to roll back to, whose data is in the DVC cache
    or on the ``remote`` (as far as :func:`check_holds` can tell)."""
    if round_tag(number) not in round_tags(campaign):
        known = ", ".join(round_tags(campaign)) or "none"
        raise VersionError(f"{campaign.root.resolve()}: there is no round {number} to roll back to (tags: {known}).")
    if not remote and lacking(campaign, round_tag(number)):
        raise VersionError(f"{campaign.root.resolve()}: round {number}'s data is not in this copy's DVC cache, and "
                           "params.yaml names no DVC remote (remote.url) to fetch it from; set remote.url first.")
    if remote:
        check_holds(campaign, remote, round_tag(number))


def at_round(campaign: Campaign, number: int) -> bool:
    """Whether a rollback to round ``number`` would change nothing: the last commit records its data
    (data.dvc, dvc.lock and metrics.json as its tag has them), data/ is exactly that, and no later
    round has a tag to archive."""
    tag = round_tag(number)
    if tag not in round_tags(campaign) or later_tags(campaign, number):
        return False
    if run(["git", "diff", "--name-only", tag, "HEAD", "--", *WRITTEN], campaign.root).strip():
        return False
    return not lacking(campaign, None) and not changed_data(campaign)


def rollback(campaign: Campaign, number: int, *, remote: str | None = None) -> str:
    """Restore data/ (and metrics.json, dvc.lock) to tag ``round-NNN`` as a new commit.

    Later rounds stay in the history: their tags are renamed ``archived/round-NNN-<commit>``
    so the next rounds can take the numbers again. With a ``remote`` (a fresh clone has
    no DVC cache) the data of that round is fetched from it first. Returns the new commit id.
    """
    root = campaign.root
    _ensure_identity(root)
    check_rollback_target(campaign, number, remote=remote)
    tag = round_tag(number)
    restore = [n for n in ("data.dvc", "dvc.lock", "metrics.json") if exists_at(root, tag, n)]
    run(["git", "checkout", tag, "--", *restore], root)
    fetch = []
    if remote:
        set_remote(campaign, remote)
    if remote and lacking(campaign, None):  # a clone: that round's data is on the remote only
        fetch = [["fetch", "-q", "-r", REMOTE, "data.dvc"]]
    dvc(*fetch, ["checkout", "-q", "--force", "data.dvc"], root=root)
    run(["git", "add", "--", *restore], root)
    run(["git", "commit", "-q", "--allow-empty", "-m", f"Roll data back to {tag}"], root)
    # After the commit: a rollback that fails before it has changed no tag, and is undone whole.
    archive_later(campaign, number)
    return head(campaign)


def later_tags(campaign: Campaign, number: int) -> list[str]:
    """The round tags of the rounds after ``number``, in order: what a rollback to ``number`` archives."""
    return [t for t in round_tags(campaign) if int(t.split("-")[1]) > number]


def archive_later(campaign: Campaign, number: int) -> None:
    """Rename the tags of the rounds after ``number`` to ``archived/round-NNN-<commit>`` (again
    after an interruption: the tags already renamed are skipped)."""
    for later in later_tags(campaign, number):
        _archive_tag(campaign.root, later)


def _ensure_identity(root: Path) -> None:
    """A commit needs a git identity; use the fallback one where the machine has none."""
    for key, value in FALLBACK_IDENTITY.items():
        if not run(["git", "config", key], root, ok_codes=(0, 1), check_root=False).strip():
            run(["git", "config", key, value], root, check_root=False)


def _archive_tag(root: Path, tag: str) -> None:
    existing = run(["git", "tag", "--list", tag], root).strip()
    if existing:
        commit_id = run(["git", "rev-list", "-n", "1", tag], root).strip()
        archived = f"archived/{tag}-{commit_id[:8]}"
        if not run(["git", "tag", "--list", archived], root).strip():  # an interrupted rollback may have made it
            run(["git", "tag", archived, tag], root)
        run(["git", "tag", "-d", tag], root)
