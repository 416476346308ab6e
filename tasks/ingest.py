"""Answers coming back: read a CSV/TSV/JSONL file or a Label Studio JSON export, check every
row, store what is new.

One path for every answer file, whether named on the command line, dropped in the
inbox or pulled from Label Studio: :func:`ingest_file` = :func:`read_answer_file` ->
:func:`validate_answers` -> ``store.append_annotations``. A round's ``batch.csv``
(schema.BATCH_COLUMNS) is the template: people fill in ``label``, and add an
``annotator_id`` column where someone other than the suggested annotator answered. Other
columns are ignored. A ``.json`` file is a Label Studio export
(:mod:`crowdloop.tasks.labelstudio_format`): one row per annotation.

Every problem raises :class:`IngestError` naming the file and the 1-based physical
line (the task id in a Label Studio export) before anything is stored, so nothing from
a bad file is kept. Values are compared as stripped text. Labels must be class names
exactly as in ``params.yaml``; class indices are not accepted, because a class may be named "1".
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from crowdloop.tasks import config, labelstudio_format, store
from crowdloop.tasks.errors import IngestError
from crowdloop.tasks.files import unescape_formula
from crowdloop.tasks.schema import ANSWER_COLUMNS

DELIMITERS = {".csv": ",", ".tsv": "\t", ".jsonl": None}  # None: one JSON object per line
LABEL_STUDIO = ".json"  # a Label Studio JSON export
# line: where the row starts in the file (0 in a Label Studio export, where task locates it);
# status: skipped | empty for an annotation that gives no class, else ''
READ_COLUMNS = (*ANSWER_COLUMNS, "line", "task", "status")
USED = (*ANSWER_COLUMNS, "suggested_annotator")  # other columns are ignored


@dataclass(frozen=True)
class Ingested:
    """What one answer file brings.

    ``new``: the answered rows not stored before (schema.ANSWER_COLUMNS), once each, in
    file order. ``round`` and ``part``: the round they are filed under and the part file
    that holds them, once stored (None before, or when nothing was new). ``skipped`` and
    ``empty``: Label Studio annotations that were skipped (cancelled) or chose no class;
    counted, never stored.
    """

    source: str
    new: pd.DataFrame
    already_stored: int   # answered rows identical to stored annotations
    unanswered: int       # rows with an empty label (tasks without annotations)
    skipped: int = 0
    empty: int = 0
    round: int | None = None
    part: Path | None = None


def ingest_file(campaign: store.Campaign, path: Path, *, classes: Sequence[str],
                labelstudio: config.LabelStudioConfig | None = None) -> Ingested:
    """Read, check and store one answer file's new answers, filed under the last completed round
    (0 before the first). Raises :class:`IngestError` (file and line) before anything is stored.
    ``labelstudio``: how a Label Studio export names annotators (the template's rule if None)."""
    checked = validate_answers(read_answer_file(path, labelstudio=labelstudio), source=str(path),
                               examples=store.read_examples(campaign),
                               stored=store.read_annotations(campaign), classes=classes)
    rounds = store.completed_rounds(campaign)
    number = rounds[-1] if rounds else 0
    part = store.append_annotations(campaign, checked.new, round=number, source=f"ingest:{Path(path).name}")
    return replace(checked, round=number, part=part)


def commit_message(results: Sequence[Ingested]) -> str:
    """The commit message for stored answers: how many, from which files, under which round."""
    stored = [r for r in results if len(r.new)]
    names = ", ".join(Path(r.source).name for r in stored)
    rounds = ", ".join(str(n) for n in sorted({r.round for r in stored}))
    return f"Ingest {sum(len(r.new) for r in stored)} annotations from {names} (round {rounds})"


def read_answer_file(path: Path, *, labelstudio: config.LabelStudioConfig | None = None) -> pd.DataFrame:
    """Parse an answer file; nothing is checked against the campaign yet.

    Parameters
    ----------
    path : a ``.csv``, ``.tsv`` or ``.jsonl`` file, or a Label Studio JSON export (``.json``), UTF-8
    labelstudio : how a Label Studio export's ``completed_by`` becomes an annotator id
        (params.yaml ``labelstudio``; None: the template's)

    Returns
    -------
    DataFrame of shape (R, 6)
        example_id, annotator_id, label (stripped str, '' where empty), line (int, the
        1-based physical line where the row starts; 0 in a Label Studio export), task
        (the Label Studio task id, '' in other files) and status ('', or skipped / empty
        for a Label Studio annotation without a class), one row per non-blank row of the
        file or per annotation. annotator_id falls back to the row's suggested_annotator
        where it is empty or absent.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*DELIMITERS, LABEL_STUDIO):
        raise IngestError(f"{path}: unsupported file type '{path.suffix}'; save the answers as one of "
                          f"{', '.join(DELIMITERS)}, or a Label Studio JSON export ({LABEL_STUDIO}).")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IngestError(f"{path}: cannot read the file: no such file; check the path.") from None
    except OSError as err:
        raise IngestError(f"{path}: cannot read the file ({err.strerror or err}).") from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise IngestError(f"{path}:{line}: not UTF-8 text; save the answers as UTF-8 CSV, TSV or JSONL.") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise IngestError(f"{path}:{line}: binary data (a NUL byte); this is not a CSV, TSV or JSONL text file.")
    if suffix == LABEL_STUDIO:
        records = labelstudio_format.read_export(path, text, rule=labelstudio or config.load().labelstudio)
    elif DELIMITERS[suffix] is None:
        records = _jsonl(path, text)
    else:
        records = _delimited(path, text, DELIMITERS[suffix])
    return pd.DataFrame(records, columns=list(READ_COLUMNS)).astype({"line": "int64"})


def _delimited(path: Path, text: str, delimiter: str) -> list[tuple]:
    # strict: a stray or unclosed quote fails here instead of silently swallowing later rows
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as err:
        raise IngestError(f"{path}:1: malformed header ({err}); fix the quoting on the first line.") from None
    if not any(header):
        raise IngestError(f"{path}:1: no header; the first line must name the columns "
                          "example_id, annotator_id, label.")
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise IngestError(f"{path}:1: column '{twice[0]}' appears more than once; keep one.")
    _require_columns(path, header, line=1)
    position = {name: i for i, name in enumerate(header)}
    records, start = [], reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return records
        except csv.Error as err:
            kind = "TSV" if delimiter == "\t" else "CSV"
            if "end of data" in str(err):  # the quote opened on the record's first line, not at the file's end
                raise IngestError(f"{path}:{start + 1}: malformed {kind}: a quoted field starting on this line "
                                  "is never closed; add the closing quote.") from None
            raise IngestError(f"{path}:{reader.line_num}: malformed {kind} ({err}); "
                              "check the quotes on this line.") from None
        line, start = start + 1, reader.line_num
        if any(cell.strip() for cell in row):
            # a spreadsheet cell crowdloop escaped against formula injection reads back as written
            cells = {name: unescape_formula(row[i].strip()) for name, i in position.items() if i < len(row)}
            records.append(_record(cells, line))


def _jsonl(path: Path, text: str) -> list[tuple]:
    records, keys, first = [], [], None
    # split on '\n' only: str.splitlines also breaks at U+2028 and friends, which JSON strings may hold
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise IngestError(f"{path}:{line}: not valid JSON ({err.msg}, column {err.colno}); "
                              "write one JSON object per line.") from None
        if not isinstance(obj, dict):
            raise IngestError(f"{path}:{line}: expected a JSON object with example_id, annotator_id, label, "
                              f"got {type(obj).__name__}.")
        first = line if first is None else first
        keys += [k for k in obj if k not in keys]
        records.append(_record({k: _json_text(path, line, k, v) for k, v in obj.items() if k in USED}, line))
    if first is not None:
        # a key missing from every object is a missing column; missing from some, an empty cell
        _require_columns(path, keys, line=first)
    return records


def _json_text(path: Path, line: int, key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        raise IngestError(f"{path}:{line}: '{key}' must be a string or a number, not {json.dumps(value)}.")
    return str(value).strip()


def _require_columns(path: Path, found: list[str], *, line: int) -> None:
    missing = [c for c in ("example_id", "label") if c not in found]
    if "annotator_id" not in found and "suggested_annotator" not in found:
        missing.append("annotator_id")
    if missing:
        shown = ", ".join(name for name in found if name) or "none"
        raise IngestError(f"{path}:{line}: missing column '{missing[0]}' (found: {shown}); the answers need "
                          "example_id, label and annotator_id (or the batch file's suggested_annotator).")


def _record(cells: dict[str, str], line: int) -> tuple:
    # an empty annotator_id cell means "the suggested annotator answered" (batch round-trip)
    annotator = cells.get("annotator_id") or cells.get("suggested_annotator", "")
    return cells.get("example_id", ""), annotator, cells.get("label", ""), line, "", ""


def validate_answers(answers: pd.DataFrame, *, source: str, examples: pd.DataFrame, stored: pd.DataFrame,
                     classes: Sequence[str]) -> Ingested:
    """Check every answered row against the campaign; return the rows to store.

    Parameters
    ----------
    answers : DataFrame of shape (R, 6)
        example_id, annotator_id, label, line, task, status, as from :func:`read_answer_file`.
    source : the file as the user named it, for messages
    examples : DataFrame with schema.EXAMPLE_COLUMNS
    stored : DataFrame with schema.ANNOTATION_COLUMNS, the annotations already kept
    classes : class names, in order

    Returns
    -------
    Ingested
        ``new`` holds the answered rows not stored yet, once each, in file order; not stored.

    Raises
    ------
    IngestError
        For the first problem in file order; the message counts any further ones.
    """
    split = dict(zip(_text(examples["example_id"]), examples["split"]))
    previous = {(e, a): (label, r) for e, a, label, r in zip(
        _text(stored["example_id"]), _text(stored["annotator_id"]), _text(stored["label"]), stored["round"])}
    class_names = [str(c) for c in classes]
    columns = {c: _text(answers[c]) for c in ANSWER_COLUMNS}
    seen: dict[tuple[str, str], tuple[str, str]] = {}  # (example, annotator) -> (label, where)
    new, problems, already = [], [], 0
    counts = {"unanswered": 0, labelstudio_format.SKIPPED: 0, labelstudio_format.EMPTY: 0}
    for example, annotator, label, line, task, status in zip(*columns.values(), answers["line"],
                                                             _text(answers["task"]), _text(answers["status"])):
        if status or not label:
            counts[status or "unanswered"] += 1
            continue
        here = f"in task {task}" if task else f"on line {line}"
        problem = _row_problem(example, annotator, label, split, class_names)
        key = (example, annotator)
        if problem is None and key in seen and seen[key][0] != label:
            problem = (f"annotator '{annotator}' gives example '{example}' the label '{label}' here but "
                       f"'{seen[key][0]}' {seen[key][1]}; keep one of the two")
        if problem is None and key in previous and previous[key][0] != label:
            problem = (f"annotator '{annotator}' already gave example '{example}' the label '{previous[key][0]}' "
                       f"in round {previous[key][1]} but this file says '{label}'; stored answers are never "
                       "changed, so remove this row")
        if problem is not None:
            problems.append(f"{source}: task {task}: {problem}" if task else f"{source}:{line}: {problem}")
        elif key in seen:
            continue  # the same answer twice in one file counts once
        elif key in previous:
            seen[key] = (label, here)
            already += 1
        else:
            seen[key] = (label, here)
            new.append((example, annotator, label))
    if problems:
        more = len(problems) - 1
        suffix = f" ({more} more row{'s' if more > 1 else ''} below also fail{'' if more > 1 else 's'})" if more else ""
        raise IngestError(f"{problems[0]}{suffix}.")
    return Ingested(source=source, new=pd.DataFrame(new, columns=list(ANSWER_COLUMNS)), already_stored=already,
                    unanswered=counts["unanswered"], skipped=counts[labelstudio_format.SKIPPED],
                    empty=counts[labelstudio_format.EMPTY])


def _row_problem(example: str, annotator: str, label: str, split: dict, classes: list[str]) -> str | None:
    """What is wrong with one answered row on its own, or None."""
    if not example:
        return "empty example_id; copy the ids from the round's batch.csv"
    if example not in split:
        return f"unknown example id '{example}'; use the example ids from the round's batch.csv"
    if split[example] != "pool":
        return f"example '{example}' belongs to the gold test split, which is never annotated; remove this row"
    if not annotator:
        return (f"no annotator id for example '{example}'; fill in annotator_id "
                "(add the column if needed) with who answered")
    if label not in classes:
        close = [c for c in classes if c.casefold() == label.casefold()]
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"label '{label}' is not a class{hint}; write one of {', '.join(classes)} "
                "exactly as in params.yaml")
    return None


def _text(values: pd.Series) -> list[str]:
    return values.fillna("").astype(str).str.strip().tolist()
