"""The Python API of a campaign's versions (what `crowdloop rollback`, `push`, `pull` and `verify` call):
data/ back to a round, to and from the DVC remote, and the check that store, git, DVC and MLflow agree.
Importable from :mod:`crowdloop.api` and from ``crowdloop`` itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import recovery, store, version
from crowdloop.tasks.errors import CampaignError, ConfigError
from crowdloop.tasks.store import Campaign


@dataclasses.dataclass(frozen=True)
class RolledBack:
    """A rollback: the commit before it and the new commit that restores round ``round``'s data/ (the same
    commit when data/ was round ``round``'s already, and no later round had a tag), the annotations
    data/ held before and holds now (those ingested after the round are no longer in it), and the tags of
    later rounds it archived (``round-NNN``, now ``archived/round-NNN-<commit>``)."""

    round: int
    before: str
    after: str
    annotations_before: int
    annotations_after: int
    archived: tuple[str, ...] = ()


def rollback(campaign: str | Path | Campaign, number: int) -> RolledBack:
    """data/ back to exactly what it was at round ``number`` (fetched from the DVC remote if this
    clone lacks it), as a new commit; later round tags are kept as ``archived/round-*``."""
    camp, cfg = _versioned(campaign)
    # before the journal: a typo, or a remote without the round's data, must not leave a rollback to finish
    version.check_rollback_target(camp, number, remote=cfg.remote.url)
    with recovery.writing(camp, "rollback", target=number, remote=cfg.remote.url):
        before, annotations = version.head(camp), len(store.read_annotations(camp))
        if version.at_round(camp, number):  # nothing to do: no empty commit, nothing fetched
            return RolledBack(number, before, before, annotations, annotations)
        later = tuple(version.later_tags(camp, number))
        after = version.rollback(camp, number, remote=cfg.remote.url)
    return RolledBack(number, before, after, annotations, len(store.read_annotations(camp)), later)


@dataclasses.dataclass(frozen=True)
class Pushed:
    """A push: the remote's url, and the round tags whose data this copy could not send to a remote
    reached by a URL (its DVC cache lacks it: the remote holds it only if another copy pushed it)."""

    url: str
    not_sent: tuple[str, ...] = ()


def push(campaign: str | Path | Campaign) -> Pushed:
    """Every round tag's data/ to the DVC remote of params.yaml (VersionError naming what a remote
    folder still lacks that this copy cannot send)."""
    camp, cfg = _versioned(campaign)
    with recovery.writing(camp, "push"):
        not_sent = version.push(camp, _remote(cfg), all_tags=True)
    return Pushed(version.remote_url(camp, cfg.remote.url), tuple(not_sent))


def pull(campaign: str | Path | Campaign) -> str:
    """The checked-out data/ from the DVC remote (a fresh clone); returns the remote's url."""
    camp, cfg = _versioned(campaign)
    with recovery.writing(camp, "pull"):
        version.pull(camp, _remote(cfg))
    return version.remote_url(camp, cfg.remote.url)


def verify(campaign: str | Path | Campaign):
    """Check the campaign end to end (after finishing what an interrupted command left, when no
    writer is running): returns a ``Verified`` whose ``findings`` are one line each ([] = sound)."""
    from crowdloop import integrity

    return integrity.verify(store.open_campaign(campaign))


def _versioned(root: str | Path | Campaign) -> tuple[Campaign, config_mod.Config]:
    """The campaign at ``root`` and its config; data/ may be missing (a fresh clone)."""
    camp = root if isinstance(root, Campaign) else Campaign(Path(root))
    if not camp.params_file.is_file() or not (camp.root / "data.dvc").is_file():
        raise CampaignError(f"{camp.root.resolve()} is not a crowdloop campaign or a clone of one "
                            "(no params.yaml or data.dvc); cd into one first.")
    return camp, config_mod.load(camp.params_file)


def _remote(cfg: config_mod.Config) -> str:
    if not cfg.remote.url:
        raise ConfigError("params.yaml: 'remote.url' is null; name a DVC remote (a folder or s3://...) first.")
    return cfg.remote.url
