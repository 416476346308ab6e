"""Writing files so that a crash never leaves a half-written one, and safe file names.

Used by the modules that own a folder (:mod:`.store`, :mod:`.simulation_store`,
:mod:`.embedding_cache`); nothing else writes files.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


def write_parquet_atomic(path: Path, frame: pd.DataFrame) -> None:
    with replacing(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_text_atomic(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


@contextmanager
def replacing(path: Path):
    """A temporary sibling of ``path`` that replaces it only once fully written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; data files are ordinary files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
