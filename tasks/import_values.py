"""Where an imported value came from, and how ids and labels become text.

Ids and labels become text: ``1``, ``1.0`` and ``"1.0"`` are all ``"1"``, while ids
such as ``"0e12"`` or ``"007"`` are never read as numbers. Errors name the file, the
line (counted in the file when it is CSV, TSV or JSONL, else the row) and the column.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from crowdloop.tasks.errors import CrowdloopError


SHOWN = 8  # column names an error lists before "and N more"


class ImportFormatError(CrowdloopError, ValueError):
    """A dataset that cannot be imported; the message names the file, line and column."""


@dataclass(frozen=True)
class Origin:
    """Where a frame came from, so that an error can say ``file:line``.

    ``kind`` is 'csv', 'tsv' or 'jsonl' when lines can be counted in ``path``; otherwise
    a row's position is reported, or the row's index itself when it is a string.
    """

    name: str
    path: Path | None = None
    kind: str = ""

    def at(self, row) -> str:
        if isinstance(row, str):
            return f"{self.name} ({row})"
        if self.path is not None and self.kind in ("csv", "tsv", "jsonl"):
            return f"{self.name}:{_line_of(self.path, self.kind, int(row))}"
        return f"{self.name}, row {int(row) + 1}"


def _line_of(path: Path, kind: str, row: int) -> int:
    """The line where data row ``row`` (0-based, header excluded) starts; only run on errors."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        if kind == "jsonl":  # pandas skips blank lines
            filled = (n for n, text in enumerate(handle, start=1) if text.strip())
        else:  # a quoted field may span lines, so count the records the csv module sees
            reader = csv.reader(handle, delimiter="\t" if kind == "tsv" else ",")
            filled, start = [], 1
            for record in reader:
                if record:
                    filled.append(start)
                start = reader.line_num + 1
            filled = iter(filled[1:])  # the header
        for n, line in enumerate(filled):
            if n == row:
                return line
    return row + 2


def normalise_value(value) -> str | None:
    """An id or label as text: 1, 1.0, '1.0' -> '1'; blank or NaN -> None; '007' stays '007'."""
    if value is None or (pd.api.types.is_scalar(value) and not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    whole = re.fullmatch(r"([+-]?\d+)\.0*", text)
    return whole.group(1) if whole else (text or None)


# the flag of `crowdloop simulate` and `crowdloop aggregate` (crowdloop/simulate_cmd.py) that sets each
# keyword of importers.load naming a column: an error about a missing column names both
FLAGS = {"example_col": "--example-col", "id_col": "--example-col", "annotator_col": "--annotator-col",
         "label_col": "--label-col", "gold_col": "--gold-col", "examples_id_col": "--examples-id-col",
         "examples_gold_col": "--examples-gold-col", "text_cols": "--text-cols", "text_col": "--text-cols",
         "annotator_cols": "--annotator-cols"}


def need_columns(frame: pd.DataFrame, origin: Origin, *, fixed: Sequence[str] = (),
                 **options: str | Sequence[str] | None) -> None:
    """Fail if a column is not in ``frame``, naming what sets it.

    fixed : columns the format reads by name
    options : the keywords of :data:`FLAGS` that named the other columns, each a column, several, or None
    """
    named = [(None, c) for c in fixed] + [(option, c) for option, value in options.items() if value is not None
                                          for c in ([value] if isinstance(value, str) else value)]
    for option, column in named:
        if column not in frame.columns:
            names = [str(c) for c in frame.columns]
            found = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
            # pandas reads Le-Wi-Di's {item_id: {"text", "annotators", ...}} with the items as columns
            lewidi = origin.kind == "json" and {"text", "annotators", "annotations"} <= set(map(str, frame.index))
            if lewidi:
                hint = "it looks like Le-Wi-Di JSON: read it with --format lewidi"
            elif option is None:
                hint = "this format reads the column by that name: rename it in the file, or name the file's format " \
                       "with --format"
            else:
                hint = f"name the column that holds it with {FLAGS[option]} ({option})"
            raise ImportFormatError(f"{origin.name}: missing column '{column}' (found: {found}); {hint}.")


def labels(series: pd.Series, names: dict | None, origin: Origin, column: str) -> pd.Series:
    """Normalised labels mapped through ``names`` (its keys, or a name itself, are accepted)."""
    values = series.map(normalise_value)
    if names is None:
        return values
    mapping = {**{str(name): str(name) for name in names.values()},
               **{normalise_value(k): str(v) for k, v in names.items()}}
    unknown = values.notna() & ~values.isin(list(mapping))
    if unknown.any():
        row = values.index[unknown][0]
        raise ImportFormatError(f"{origin.at(row)}: label '{values[row]}' in column '{column}' is not in "
                                f"label_names {sorted(map(str, names))}; add it to the mapping.")
    return values.map(mapping, na_action="ignore")


def ids(series: pd.Series, origin: Origin, column: str, *, unique: bool) -> pd.Series:
    """Normalised ids; a blank id, or a repeated one when ``unique``, is an error at its line."""
    values = series.map(normalise_value)
    if values.isna().any():
        raise ImportFormatError(f"{origin.at(values.index[values.isna()][0])}: empty id in column '{column}'.")
    repeated = values.duplicated()
    if unique and repeated.any():
        row = values.index[repeated][0]
        first = values.index[values == values[row]][0]
        raise ImportFormatError(f"{origin.at(row)}: id '{values[row]}' in column '{column}' is repeated "
                                f"(first at {origin.at(first)}); ids must be unique.")
    return values


def read_json(path: Path):
    """The JSON document in ``path``; ImportFormatError naming the file (and line) when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ImportFormatError(f"{path}: cannot read the file ({err}).") from err
    except json.JSONDecodeError as err:
        raise ImportFormatError(f"{path}:{err.lineno}: not valid JSON ({err.msg}).") from err
