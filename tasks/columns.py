"""Column names people write: which ones crowdloop reads, and which ones look meant for them.

A file that names a column ``ID``, ``Annotator ID`` or ``worker`` where crowdloop reads
``id`` or ``annotator_id`` would otherwise be read without it: its values silently
replaced by a default (the suggested annotator, split ``pool``, no gold). :func:`misnamed`
finds such a column so that the reader can refuse the file and name it; a column that
looks like none of them (``notes``, ``comment``, a spreadsheet's extra columns) is
left alone.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence


def folded(name: str) -> str:
    """``name`` without case, spaces, underscores, hyphens or dots: ``Annotator ID`` -> ``annotatorid``."""
    return re.sub(r"[\s_\-.]+", "", str(name)).casefold()


def misnamed(found: Sequence[str], wanted: Sequence[str], *,
             aliases: Mapping[str, Sequence[str]] | None = None) -> tuple[str, str] | None:
    """The first column of ``found`` that looks meant for one of ``wanted``, and the one it looks meant for.

    A column looks meant for ``w`` when it is not ``w`` but is spelled like it up to case,
    spaces, underscores, hyphens and dots (``Label``, ``annotator id``), or, while ``w``
    itself is not in ``found``, when it is one of ``aliases[w]`` (other names for the same
    thing, compared the same way: ``worker`` for ``annotator_id``). None when no column does.
    """
    present = set(found)
    for column in found:
        if column in wanted:
            continue
        key = folded(column)
        for name in wanted:
            other_names = () if name in present else (aliases or {}).get(name, ())
            if key == folded(name) or key in {folded(a) for a in other_names}:
                return column, name
    return None


def one_column_header(found: Sequence[str]) -> str | None:
    """Why a header of one column that holds a separator crowdloop does not read (``id;text``) cannot
    be read, as a sentence for the error; None for any other header. A spreadsheet saving "CSV" in a
    language whose decimal mark is the comma separates the cells with semicolons."""
    if len(found) != 1:
        return None
    sep = next((s for s in (";", "|", "\t") if s in str(found[0])), None)
    return None if sep is None else (
        f"the header is one column, {str(found[0])!r}, separated by {sep!r} it seems; crowdloop reads "
        "comma-separated .csv and tab-separated .tsv files: save the file with commas (a spreadsheet's "
        "CSV export in some languages uses semicolons), or as .tsv")


def tab_separated(header: str) -> bool:
    """Whether a header line separates its columns by tabs, not commas: a TSV, whatever its file is named."""
    return "," not in header and "\t" in header
