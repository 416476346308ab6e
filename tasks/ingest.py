"""Annotators' answers coming back: read a CSV/TSV/JSONL file, check every row, keep what is new.

Every problem raises :class:`IngestError` naming the file and line before anything
is returned, so the caller stores nothing from a bad file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

FORMATS = (".csv", ".tsv", ".jsonl")
REQUIRED = ("example_id", "label")


class IngestError(ValueError):
    """An answer file that cannot be stored; the message names file and line."""


@dataclass(frozen=True)
class IngestResult:
    new: pd.DataFrame       # example_id, annotator_id, label: rows to store, file order
    already_stored: int     # rows identical to stored annotations
    unanswered: int         # rows with an empty label


def read_answer_file(path: Path) -> pd.DataFrame:
    """Rows of ``path`` as example_id, annotator_id, label (str, '' if empty), line (1-based)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise IngestError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(FORMATS)}.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise IngestError(f"{path}: cannot read the file ({err.strerror or err}).") from err
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise IngestError(f"{path}:{line}: not UTF-8 text; save the answers as UTF-8 CSV, TSV or JSONL.") from err
    if "\x00" in text:
        raise IngestError(f"{path}:1: this is a binary file, not CSV, TSV or JSONL text.")
    records = _jsonl(path, text) if path.suffix.lower() == ".jsonl" else _delimited(path, text)
    frame = pd.DataFrame(records, columns=["example_id", "annotator_id", "label", "line"])
    return frame.astype({"line": int})


def _delimited(path: Path, text: str) -> list[tuple]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise IngestError(f"{path}:1: the file is empty; expected a header with example_id, annotator_id, label.")
    except csv.Error as err:
        raise IngestError(f"{path}:1: malformed header ({err}).") from err
    columns = _columns(path, header, line=1)
    records = []
    start = reader.line_num
    try:
        for row in reader:
            line, start = start + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            values = dict(zip(header, row))
            records.append(tuple(values.get(c, "").strip() for c in columns) + (line,))
    except csv.Error as err:
        raise IngestError(f"{path}:{reader.line_num}: malformed CSV ({err}).") from err
    return records


def _jsonl(path: Path, text: str) -> list[tuple]:
    records = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise IngestError(f"{path}:{line}: not valid JSON ({err.msg}); write one object per line.") from err
        if not isinstance(obj, dict):
            raise IngestError(f"{path}:{line}: expected a JSON object with example_id, annotator_id, label.")
        columns = _columns(path, list(obj), line=line)
        records.append(tuple("" if obj.get(c) is None else str(obj.get(c)).strip() for c in columns) + (line,))
    return records


def _columns(path: Path, found: list[str], *, line: int) -> tuple[str, str, str]:
    """(example, annotator, label) column names; the batch file's suggested_annotator stands in for annotator_id."""
    annotator = "annotator_id" if "annotator_id" in found else "suggested_annotator"
    for column in (*REQUIRED, annotator):
        if column not in found:
            wanted = "annotator_id" if column == "suggested_annotator" else column
            raise IngestError(f"{path}:{line}: missing column '{wanted}' (found: {', '.join(found) or 'none'}).")
    return "example_id", annotator, "label"


def validate_answers(answers: pd.DataFrame, *, source: str, examples: pd.DataFrame, stored: pd.DataFrame,
                     classes: Sequence[str]) -> IngestResult:
    """Check every answered row; return the rows to store (new, in file order).

    Parameters
    ----------
    answers : from :func:`read_answer_file`
    examples : store.EXAMPLE_COLUMNS
    stored : store.ANNOTATION_COLUMNS, the annotations already kept
    """
    split = examples.set_index("example_id")["split"]
    previous = {(e, a): (l, r) for e, a, l, r in
                zip(stored["example_id"], stored["annotator_id"], stored["label"], stored["round"])}
    answered = answers[answers["label"] != ""]
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    new, already = [], 0
    for example, annotator, label, line in answered.itertuples(index=False):
        where = f"{source}:{line}"
        if example not in split.index:
            raise IngestError(f"{where}: unknown example id '{example}'; use ids from the batch file.")
        if split[example] != "pool":
            raise IngestError(f"{where}: example '{example}' is in the gold test split and is not annotated.")
        if not annotator:
            raise IngestError(f"{where}: empty annotator id for example '{example}'; say who answered.")
        if label not in classes:
            raise IngestError(f"{where}: label '{label}' is not a class; use one of {', '.join(classes)}.")
        key = (example, annotator)
        if key in seen:
            if seen[key][0] != label:
                raise IngestError(f"{where}: annotator '{annotator}' labels example '{example}' '{label}' here "
                                  f"but '{seen[key][0]}' on line {seen[key][1]}; keep one answer.")
            continue
        seen[key] = (label, line)
        if key in previous:
            if previous[key][0] != label:
                raise IngestError(f"{where}: annotator '{annotator}' already labelled example '{example}' "
                                  f"'{previous[key][0]}' (round {previous[key][1]}); this file says '{label}'.")
            already += 1
            continue
        new.append((example, annotator, label))
    return IngestResult(new=pd.DataFrame(new, columns=["example_id", "annotator_id", "label"]),
                        already_stored=already, unanswered=int((answers["label"] == "").sum()))
