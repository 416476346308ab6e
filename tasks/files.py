"""Writing files so that a crash never leaves a half-written one, reading parquet files, CSVs
people open in spreadsheets, and safe file names.

Used by the modules that own a folder (:mod:`.store`, :mod:`.simulation_store`,
:mod:`.embedding_cache`, :mod:`.journal`); nothing else writes files. A write goes to a
temporary sibling (``*.tmp``), is flushed to disk (fsync), renamed over its target, and
the folder is fsynced too, so after a crash or a power cut a file holds either its old
bytes or its new ones, and a rename that returned has happened.

A CSV written for people (a round's batch.csv, assignments, unroutable.csv, the Label
Studio CSV tasks) goes through :func:`people_csv`: a text cell that a spreadsheet would
run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return:
CSV injection) gets a leading apostrophe, so the spreadsheet shows it as text.
:func:`read_people_csv` (and the ingestion of answer files) removes exactly the
apostrophes the writer added: a cell that itself starts with an apostrophe before one of
those characters (or before another apostrophe) gets one more, so an id that really starts
with ``'`` reads back as itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"  # what a write in progress is called; a leftover one is a crash's trace


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def escape_formula(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text (see the module docstring); :func:`unescape_formula`
    undoes it exactly."""
    return ESCAPE + cell if _escaped_form(cell) else cell


def unescape_formula(cell: str) -> str:
    """``cell`` without the apostrophe :func:`escape_formula` added; any other cell unchanged."""
    return cell[1:] if cell.startswith(ESCAPE) and _escaped_form(cell[1:]) else cell


def _escaped_form(cell: str) -> bool:
    # an apostrophe before a trigger is escaped too: otherwise reading back could not tell it from an added one
    return cell[:1] in FORMULA_STARTS or (cell[:1] == ESCAPE and cell[1:2] in (*FORMULA_STARTS, ESCAPE))


def people_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text for people to open in a spreadsheet: text cells escaped against
    formula injection (numbers are written as numbers)."""
    return _map_text_cells(frame, escape_formula).to_csv(index=False)


def read_people_csv(path: Path, **options) -> pd.DataFrame:
    """A CSV that :func:`people_csv` wrote (``options`` go to ``pd.read_csv``), its cells as they
    were before escaping."""
    return _map_text_cells(pd.read_csv(path, **options), unescape_formula)


def _map_text_cells(frame: pd.DataFrame, function) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].map(lambda v: function(v) if isinstance(v, str) else v)
    return out


def read_parquet(path: Path) -> pd.DataFrame:
    """The parquet file at ``path`` as ``pd.read_parquet`` reads it, but opened by Arrow itself.

    ``pd.read_parquet`` hands Arrow a Python file object. Arrow's reader threads may drop the last
    reference to it only as the interpreter shuts down; that takes the GIL, which a finishing
    interpreter no longer gives, and the process aborts after its work is done (``terminate called
    without an active exception``, exit status 134). Here 15 of 880 runs of a script that read a
    campaign's parquet files aborted so (pyarrow 25 and 26), and none of 500 that read them as this
    function does: Arrow's own file has no Python object to release.
    """
    return pq.read_table(os.fspath(path), use_pandas_metadata=True).to_pandas()


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
