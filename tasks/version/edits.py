"""Files of data/ changed by hand: kept aside, and the store's own put back.

data/ is the campaign's store: only crowdloop writes it, and every commit records it
whole. A file changed there by hand (a batch filled in where it lies, an assignment
saved over by a spreadsheet) would be taken into the next commit, or, as commits refuse
changes that are not their own, leave every command refusing to run. So a writer first
moves each such file to ``edited/<time>/<its path under data/>`` and puts back the bytes
the last commit recorded, from the DVC cache: nothing typed by hand is lost, and the store
is again exactly what its history says.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Collection

from crowdloop.tasks.store import Campaign
from crowdloop.tasks.version.recorded import changed_data, data_listing, stored_object
from crowdloop.tasks.version.shell import VersionError

EDITED = "edited"  # under the campaign root; git-ignored in new campaigns


def put_back(campaign: Campaign, *, keep: Collection[str] = (), pulling: bool = False) -> dict[str, Path | None]:
    """Put every file of data/ that differs from the last commit back as that commit has it.

    ``keep``: paths under data/ (``annotations/x.parquet``) that a journaled command wrote
    and its recovery commits; they are left alone. A changed or added file is first moved to
    ``edited/<UTC time>/<path under data/>``; a changed or removed one is then copied back
    from the DVC cache. Returns ``{path under data/: where the hand-made version now is}``
    (None for a file that had been removed). Nothing to do (or no record of the last commit
    in the cache, as in a fresh clone before ``crowdloop pull``): ``{}``. ``pulling``: a pull
    comes next, which brings the recorded copies the DVC cache lacks (else VersionError).
    """
    names = [n for n in changed_data(campaign) if n not in keep]
    if not names:
        return {}
    recorded = data_listing(campaign)  # not None: changed_data found differences against it
    copies = {n: stored_object(campaign, recorded[n]) for n in names if n in recorded}  # what to put back
    missing = [n for n, copy in copies.items() if copy is None]
    if pulling:  # the hand-made versions go aside; the pull puts the recorded ones in their place
        copies = {n: copy for n, copy in copies.items() if copy is not None}
    elif missing:
        raise VersionError(f"data/{missing[0]} was changed by hand and the DVC cache lacks the copy the last commit "
                           "recorded; run `crowdloop pull`, then the command again.")
    now = {n for n in names if (campaign.data / n).is_file()}
    folder = _new_folder(campaign.root / EDITED) if now else None
    moved: dict[str, Path | None] = {}
    for name in names:
        path = campaign.data / name
        moved[name] = None
        if name in now:
            moved[name] = folder / name
            moved[name].parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, moved[name])
        if name in copies:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copies[name], path)
    return moved


def describe(campaign: Campaign, moved: dict[str, Path | None]) -> list[str]:
    """One line per file :func:`put_back` handled, for the log."""
    lines = []
    for name, kept in moved.items():
        kept_as = (f"your version is {kept.relative_to(campaign.root).as_posix()}" if kept is not None
                   else "it had been removed")
        lines.append(f"data/{name} was changed by hand (data/ is crowdloop's store): put back as the last "
                     f"commit has it; {kept_as}")
    return lines


def kept_version(campaign: Campaign, path: Path, moved: dict[str, Path | None]) -> Path:
    """Where :func:`put_back` kept the hand-made version of ``path`` if ``path`` is a file of data/
    it handled (``moved``, what it returned); else ``path``."""
    try:
        return moved.get(under_data(campaign, path)) or Path(path)
    except ValueError:  # not under data/
        return Path(path)


def under_data(campaign: Campaign, path: Path | str) -> str:
    """``path`` (absolute, or relative to the working directory) as a path under data/
    (``annotations/x.parquet``); ValueError when it is not under data/."""
    return Path(path).resolve().relative_to(campaign.data.resolve()).as_posix()


def _new_folder(parent: Path) -> Path:
    """``parent/<UTC time>``, with ``-2``, ``-3``... when two commands ran in the same second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder, n = parent / stamp, 1
    while folder.exists():
        n += 1
        folder = parent / f"{stamp}-{n}"
    return folder
