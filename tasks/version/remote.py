"""The campaign's DVC remote (params.yaml ``remote.url``): where it is, what it holds, push and pull.

A remote that is a local folder (``../crowdloop-remote``, relative to the campaign) is
looked into directly: it has the DVC cache's layout (``files/md5/<2>/<30>``), so what it
lacks is said before DVC runs, naming the folder, instead of DVC's bare exit code. A remote
reached by a URL (``s3://...``) is left to DVC.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import unquote, urlparse

from crowdloop.tasks.store import Campaign
from crowdloop.tasks.version.recorded import data_listing, data_md5, round_tags, stored_object
from crowdloop.tasks.version.shell import VersionError, dvc
from crowdloop.tasks.wording import count

REMOTE = "crowdloop"  # the DVC remote's name; its url comes from params.yaml (remote.url)


def remote_url(campaign: Campaign, url: str) -> str:
    """``url`` as DVC takes it: a local folder relative to the campaign becomes absolute, and so does a
    ``file:///path`` URL (which DVC would take as a folder named ``file:`` inside the campaign)."""
    if url.startswith("file://"):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise VersionError(f"the DVC remote {url} (remote.url of params.yaml): a file:// URL names a folder on "
                               "this machine, file:///path/to/folder; for a shared folder give its path as mounted "
                               "here.")
        return str(Path(unquote(parsed.path)).expanduser().resolve())
    if "://" in url:
        return url
    return str((campaign.root / Path(url).expanduser()).resolve())


def remote_folder(campaign: Campaign, url: str | None) -> Path | None:
    """The folder of a remote that is a local folder (absolute); None for a remote reached by a URL, or none."""
    return None if not url or ("://" in url and not url.startswith("file://")) else Path(remote_url(campaign, url))


def set_remote(campaign: Campaign, url: str) -> None:
    """Point the campaign's default DVC remote at ``url`` (in .dvc/config.local, which git
    does not track: params.yaml stays the one place the remote is named)."""
    url = remote_url(campaign, url)
    local = campaign.root / ".dvc" / "config.local"
    if local.is_file() and f"url = {url}\n" in local.read_text():
        return  # already set; saves a DVC start-up per round
    _check_support(url)
    dvc(["remote", "add", "--local", "--force", "--default", REMOTE, url], root=campaign.root, keep=True)


def _check_support(url: str) -> None:
    """VersionError, before it is written anywhere, when DVC needs a package this environment lacks
    for the remote ``url`` (``s3://`` without dvc-s3): a remote DVC cannot load in the campaign's DVC
    config makes its checkout (which undoes a failed command), pull and push fail from then on."""
    if "://" not in url:
        return
    from dvc_objects.fs import known_implementations  # DVC's own table: scheme -> class, or what to install

    scheme = url.split("://", 1)[0]
    known = known_implementations.get(scheme, {})
    if "err" in known and importlib.util.find_spec(known["class"].split(".", 1)[0]) is None:
        raise VersionError(f"the DVC remote {url} (remote.url of params.yaml) needs `pip install 'dvc[{scheme}]'` "
                           f"({known['err']}); install it, or point remote.url at another remote, and run this "
                           "command again.")


def push(campaign: Campaign, url: str, *, all_tags: bool = False) -> list[str]:
    """Send the DVC-tracked data to the remote at ``url`` (every round tag's with ``all_tags``, and
    then :func:`check_pushed`: DVC skips, without failing, what its cache lacks). Returns the round
    tags whose data this copy could not send to a remote reached by a URL ([] without ``all_tags``)."""
    folder = remote_folder(campaign, url)
    if folder is not None:  # only a push makes the folder: a pull from a folder that is not there is an error
        folder.mkdir(parents=True, exist_ok=True)
    set_remote(campaign, url)
    dvc(["push", "-q", "-r", REMOTE, *(["--all-tags"] if all_tags else [])], root=campaign.root)
    return check_pushed(campaign, url) if all_tags else []


def check_pushed(campaign: Campaign, url: str) -> list[str]:
    """After a push of every round tag's data: VersionError naming the round tags whose data (a file,
    or data/'s listing) neither this copy's DVC cache nor the remote ``url`` holds (a remote that is a
    local folder is looked into); for a remote reached by a URL, the round tags whose data this copy's
    cache lacks, which this push could not send (the remote has them only if another copy pushed them)."""
    folder = remote_folder(campaign, url)
    short: dict[str, list[str]] = {}
    for tag in round_tags(campaign):
        if not data_md5(campaign, tag) or not lacking(campaign, tag):
            continue
        if folder is None:
            short[tag] = []
            continue
        listing = data_listing(campaign, tag, remote=folder)
        missing = ["listing of data/"] if listing is None else \
            [f"data/{name}" for name, md5 in sorted(listing.items()) if stored_object(campaign, md5, folder) is None]
        if missing:
            short[tag] = missing
    if folder is None or not short:
        return list(short)
    tags = ", ".join(short)
    first, missing = next(iter(short.items()))
    raise VersionError(f"pushed what this copy has, but the DVC remote {folder} still lacks data of "
                       f"{count(len(short), 'round tag')} ({tags}), which this copy's DVC cache lacks too: "
                       f"{first}'s {missing[0]}{'' if len(missing) == 1 else f' and {len(missing) - 1} more'}; "
                       "run `crowdloop push` in the copy of the campaign that has it (DVC pushes from its cache).")


def pull(campaign: Campaign, url: str) -> None:
    """Fetch what the checked-out data.dvc names from the remote and check it out into data/."""
    folder = remote_folder(campaign, url)
    if folder is not None and not folder.is_dir():  # said even when this copy's DVC cache needs nothing from it
        raise _no_folder(campaign, folder, url)
    set_remote(campaign, url)
    check_holds(campaign, url, None)
    dvc(["pull", "-q", "--force", "-r", REMOTE], root=campaign.root)


def lacking(campaign: Campaign, rev: str | None) -> bool:
    """Whether the DVC cache lacks any of data/ at ``rev`` (None: the working tree's data.dvc)."""
    listing = data_listing(campaign, rev)
    return listing is None or any(stored_object(campaign, md5) is None for md5 in listing.values())


def check_holds(campaign: Campaign, url: str, rev: str | None) -> None:
    """VersionError, naming the folder and what to do, when the remote ``url`` is a local folder
    that lacks some of data/ at ``rev`` (None: the working tree's data.dvc) which the DVC cache
    lacks too (so that a fetch from it would fail); a remote reached by a URL is not looked into."""
    folder, md5 = remote_folder(campaign, url), data_md5(campaign, rev)
    if folder is None or not md5 or not lacking(campaign, rev):
        return
    what = "the checked-out commit" if rev is None else rev
    if not folder.is_dir():
        raise _no_folder(campaign, folder, url)
    listing = data_listing(campaign, rev, remote=folder)
    if listing is None:
        raise VersionError(f"the DVC remote {folder} (remote.url {url!r}) holds none of data/ at {what} (no "
                           f"{md5}): it is not the folder the campaign pushes to, or that data was never pushed "
                           f"(`crowdloop push` in the copy that made it); find the right folder, {AGAIN}.")
    missing = sorted(name for name, file_md5 in listing.items() if stored_object(campaign, file_md5, folder) is None)
    if missing:
        raise VersionError(f"the DVC remote {folder} lacks {len(missing)} of the {len(listing)} files of data/ at "
                           f"{what}, e.g. data/{missing[0]}; run `crowdloop push` in the copy of the campaign that "
                           "has them, then run this command again.")


AGAIN = "point remote.url at it (relative to this copy of the campaign, or absolute) and run this command again"


def _no_folder(campaign: Campaign, folder: Path, url: str) -> VersionError:
    return VersionError(f"the DVC remote {folder} does not exist (remote.url {url!r} of params.yaml, relative to "
                        f"the campaign {campaign.root.resolve()}); find the folder the campaign pushes to, {AGAIN}.")
