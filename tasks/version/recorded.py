"""What git and DVC have recorded in a campaign: commits, tags, data.dvc's hash and listing, what changed since."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from crowdloop.tasks import store
from crowdloop.tasks.store import Campaign
from crowdloop.tasks.version.shell import run


def head(campaign: Campaign) -> str:
    return run(["git", "rev-parse", "HEAD"], campaign.root).strip()


def subject(campaign: Campaign, rev: str = "HEAD") -> str:
    """The first line of commit ``rev``'s message."""
    return run(["git", "log", "-1", "--format=%s", rev], campaign.root).strip()


def data_listing(campaign: Campaign, rev: str | None = "HEAD", *, remote: Path | None = None) -> dict[str, str] | None:
    """``{path under data/: md5}`` that data.dvc records at ``rev`` (None: the working tree's
    data.dvc), read from the DVC cache, else from ``remote`` (a remote that is a local folder);
    None when neither holds it (a fresh clone's cache lacks earlier rounds' listings)."""
    md5 = data_md5(campaign, rev)
    return read_listing(campaign, md5, remote) if md5 else None


def read_listing(campaign: Campaign, md5: str, remote: Path | None = None) -> dict[str, str] | None:
    """``{path under data/: md5}`` of the directory object ``md5`` (a ``.dir`` listing), from the DVC
    cache, else from ``remote`` (a remote that is a local folder); None when neither holds it."""
    kept = stored_object(campaign, md5, remote)
    if kept is None:
        return None
    try:
        return {entry["relpath"]: entry["md5"] for entry in json.loads(kept.read_text())}
    except (OSError, ValueError):
        return None


def cache_object(campaign: Campaign, md5: str) -> Path:
    """Where the DVC cache keeps the object ``md5`` (a file's bytes, or a ``.dir`` listing)."""
    return remote_object(campaign.root / ".dvc" / "cache", md5)


def remote_object(remote: Path, md5: str) -> Path:
    """Where a remote that is a local folder keeps the object ``md5``: DVC's cache layout (the cache too)."""
    return remote / "files" / "md5" / md5[:2] / md5[2:]


def stored_object(campaign: Campaign, md5: str, remote: Path | None = None) -> Path | None:
    """Where the object ``md5`` is: the DVC cache, else ``remote`` (a remote that is a local folder,
    laid out as the cache is); None when neither holds it."""
    remote_copy = remote_object(remote, md5) if remote is not None else None
    return next((p for p in (cache_object(campaign, md5), remote_copy) if p is not None and p.is_file()), None)


def changed_data(campaign: Campaign) -> list[str]:
    """Paths under data/ whose bytes differ from the last commit's (added, changed or removed), sorted;
    [] when the last commit's listing is not in the DVC cache."""
    recorded = data_listing(campaign)
    if recorded is None:
        return []
    now = store.data_md5s(campaign)
    return sorted(name for name in recorded.keys() | now.keys() if recorded.get(name) != now.get(name))


def dirty(campaign: Campaign) -> list[str]:
    """Tracked files that differ from the last commit (``git status``, untracked files aside)."""
    out = run(["git", "status", "--porcelain", "--untracked-files=no"], campaign.root)
    return [line[3:] for line in out.splitlines() if line.strip()]


def round_tags(campaign: Campaign) -> list[str]:
    out = run(["git", "tag", "--list", "round-*"], campaign.root)
    return sorted(t for t in out.split() if t.count("-") == 1)


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


def exists_at(root: Path, rev: str, name: str) -> bool:
    probe = subprocess.run(["git", "cat-file", "-e", f"{rev}:{name}"], cwd=root, capture_output=True)
    return probe.returncode == 0
