"""Writing files so that a crash never leaves a half-written one, and safe file names.

Used by the modules that own a folder (:mod:`.store`, :mod:`.simulation_store`,
:mod:`.embedding_cache`, :mod:`.journal`); nothing else writes files. A write goes to a
temporary sibling (``*.tmp``), is flushed to disk (fsync), renamed over its target, and
the folder is fsynced too, so after a crash or a power cut a file holds either its old
bytes or its new ones, and a rename that returned has happened.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

TMP_SUFFIX = ".tmp"  # what a write in progress is called; a leftover one is a crash's trace


def write_parquet_atomic(path: Path, frame: pd.DataFrame) -> None:
    with replacing(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_text_atomic(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


@contextmanager
def replacing(path: Path):
    """A temporary sibling of ``path`` that replaces it only once fully written and on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; data files are ordinary files
        fsync(tmp)
        os.replace(tmp, path)
        fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Delete ``path`` if it exists, durably (its folder is fsynced)."""
    if path.exists():
        path.unlink()
        fsync(path.parent)


def leftovers(folder: Path) -> list[Path]:
    """Temporary files that an interrupted write left under ``folder``."""
    return sorted(folder.rglob(f"*{TMP_SUFFIX}")) if folder.is_dir() else []


def file_stem(name: str) -> str:
    """A file name for an id (an annotator's, say): safe characters kept, others ``_`` plus a
    short hash, so two ids never share a file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".")
    if safe == name:
        return safe
    return f"{safe or '_'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def slug(text: str, *, fallback: str) -> str:
    """``text`` as a short file-name part: runs of other characters become ``-`` (at most 40 characters)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or fallback
