"""Answers coming back: read a CSV/TSV/JSONL file or a Label Studio JSON export, check every
row, store what is new.

One path for every answer file, whether named on the command line, dropped in the inbox
or pulled from Label Studio: :func:`ingest_file` = :func:`read_answer_chunks` -> ``answer_checks.AnswerCheck``
-> ``store.append_annotations``. A round's ``batch.csv`` (schema.BATCH_COLUMNS) is the
template: people fill in ``label``, and add an ``annotator_id`` column where someone
other than the suggested annotator answered. Other columns are ignored, except one that
looks meant for a column read here (``Annotator_ID``, ``worker``, ``Label``: see
:data:`ALIASES`), which refuses the file instead of being read without it. A ``.json`` file
is a Label Studio export (:mod:`crowdloop.tasks.labelstudio_format`): one row per annotation.

CSV, TSV and JSONL files are read as a stream, :data:`CHUNK_ROWS` rows at a time, so an answer file
larger than memory can be ingested. Every problem raises :class:`IngestError` naming
the file and the 1-based physical line (the task id in a Label Studio export) before anything is stored, so nothing from a
bad file is kept; with ``skip_invalid`` the rows that fail are left out and written,
with the reason, to ``<file>.refused.csv`` beside the file, and the others are stored.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from crowdloop.tasks import columns, config, journal, labelstudio_format, store
from crowdloop.tasks.answer_checks import AnswerCheck, Ingested, stored_source
from crowdloop.tasks.errors import IngestError
from crowdloop.tasks.files import unescape_formula, write_text_atomic
from crowdloop.tasks.schema import ANSWER_COLUMNS
from crowdloop.tasks.wording import count, word

__all__ = ["IngestError", "Ingested", "commit_message", "ingest_file", "read_answer_chunks", "read_answer_file"]
DELIMITERS = {".csv": ",", ".tsv": "\t", ".jsonl": None}  # None: one JSON object per line
LABEL_STUDIO = ".json"  # a Label Studio JSON export
# line: where the row starts in the file (0 in a Label Studio export, where task locates it);
# status: skipped | empty for a Label Studio annotation that gives no class, else '';
# problem: why the row cannot be read (a short row, a line that is not JSON), else ''
READ_COLUMNS = (*ANSWER_COLUMNS, "line", "task", "status", "problem")
USED = (*ANSWER_COLUMNS, "suggested_annotator")  # other columns are ignored, unless they look meant for these:
# ALIASES, other names for them, refused while the column is absent (annotator_id's: filed under the suggested one)
ALIASES = {"annotator_id": ("annotator", "annotator_name", "worker", "worker_id", "user", "user_id", "username",
                            "rater", "rater_id", "labeler", "labeler_id", "labeller", "coder", "answered_by",
                            "annotated_by"),
           "label": ("answer", "labels", "class", "category", "annotation", "response"),
           "example_id": ("id", "example", "item", "item_id")}
CHUNK_ROWS = 50_000  # rows checked at a time: memory stays flat however long the file is


def ingest_file(campaign: store.Campaign, path: Path, *, classes: Sequence[str], on_change: str,
                labelstudio: config.LabelStudioConfig | None = None, skip_invalid: bool = False) -> Ingested:
    """Read, check and store one answer file's new answers, filed under the last completed round
    (0 before the first). Raises :class:`IngestError` (file and line) before anything is stored;
    with ``skip_invalid`` stores the valid rows and writes the others to ``<file>.refused.csv``.
    ``labelstudio``: how a Label Studio export names annotators (the template's rule if None)."""
    path = Path(path)
    check = AnswerCheck(source=str(path), examples=store.read_examples(campaign),
                        stored=store.read_annotations(campaign), classes=classes, on_change=on_change,
                        skip_invalid=skip_invalid)
    for chunk in read_answer_chunks(path, labelstudio=labelstudio):
        check.feed(chunk)
    checked = check.result()
    refused_file = None
    if len(checked.refused):
        refused_file = path.with_name(f"{path.stem}.refused.csv")
        write_text_atomic(refused_file, checked.refused.to_csv(index=False))
    rounds = store.completed_rounds(campaign)
    number = rounds[-1] if rounds else 0
    source = stored_source(path)
    part = None
    if len(checked.new):
        part = store.next_part(campaign, round=number, source=source)
        journal.part(campaign, part, source=path.name, rows=len(checked.new), round=number)
        store.append_annotations(campaign, checked.new, round=number, source=source, path=part)
    return replace(checked, round=number, part=part, refused_file=refused_file)


def commit_message(results: Sequence[Ingested]) -> str:
    """The commit message for stored answers: how many, from which files, under which round."""
    return parts_message([{"source": Path(r.source).name, "rows": len(r.new), "round": r.round}
                          for r in results if len(r.new)])


def parts_message(parts: Sequence[dict]) -> str:
    """The commit message for annotation parts (``source`` file name, ``rows``, ``round`` each)."""
    names = ", ".join(p["source"] for p in parts)
    rounds = sorted({p["round"] for p in parts})
    return (f"Ingest {count(sum(p['rows'] for p in parts), 'annotation')} from {names} "
            f"({word(len(rounds), 'round')} {', '.join(map(str, rounds))})")


def read_answer_file(path: Path, *, labelstudio: config.LabelStudioConfig | None = None) -> pd.DataFrame:
    """The whole answer file as one frame (:func:`read_answer_chunks` joined); nothing is checked
    against the campaign yet."""
    return pd.concat(list(read_answer_chunks(path, labelstudio=labelstudio)), ignore_index=True)


def read_answer_chunks(path: Path, *, chunk_rows: int = CHUNK_ROWS,
                       labelstudio: config.LabelStudioConfig | None = None) -> Iterator[pd.DataFrame]:
    """Parse an answer file as a stream of chunks; nothing is checked against the campaign yet.

    Parameters
    ----------
    path : a ``.csv``, ``.tsv`` or ``.jsonl`` file, or a Label Studio export (``.json``; its CSV and TSV
        exports are ``.csv`` files, known by their columns), UTF-8
    chunk_rows : rows per chunk
    labelstudio : how a Label Studio export's ``completed_by`` becomes an annotator id
        (params.yaml ``labelstudio``; None: the template's)

    Yields
    ------
    DataFrame of shape (R, 7)
        example_id, annotator_id, label (stripped str, '' where empty), line (int, the 1-based
        physical line where the row starts; 0 in a Label Studio JSON export), task (the task id of
        a Label Studio JSON export, '' in other files), status ('', or skipped / empty for a
        Label Studio annotation without a class) and problem ('' or why the row cannot be
        read: a short row, a line that is not a JSON object), one row per non-blank row of the file or
        per annotation. annotator_id falls back to the row's suggested_annotator where it is empty or
        absent (not in a Label Studio export: there it is empty for a task nobody answered). At least one chunk.

    Raises
    ------
    IngestError
        For what makes the whole file unreadable (not UTF-8, binary, no header, a missing
        column, an unclosed quote) and for a file with no answer rows at all.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise IngestError(f"{path}: a folder, not an answer file; give one file: crowdloop ingest FOLDER/FILE.")
    if suffix not in (*DELIMITERS, LABEL_STUDIO):
        raise IngestError(f"{path}: unsupported file type '{path.suffix}'; save the answers as one of "
                          f"{', '.join(DELIMITERS)}, or a Label Studio JSON export ({LABEL_STUDIO}).")
    if suffix == LABEL_STUDIO:  # one JSON document: read whole (an export holds a project's annotations)
        text = "".join(_lines(path))
        records = iter(labelstudio_format.read_export(path, text, rule=labelstudio or config.load().labelstudio))
        records = (record + ("",) for record in records)
    elif DELIMITERS[suffix] is None:
        records = _jsonl(path)
    else:
        records = _delimited(path, DELIMITERS[suffix], labelstudio)
    chunk, count = [], 0
    for record in records:
        chunk.append(record)
        if len(chunk) == chunk_rows:
            count += len(chunk)
            yield _frame(chunk)
            chunk = []
    if count + len(chunk) == 0:
        raise IngestError(f"{path}:1: the file holds no answers (no rows after the header); nothing to store.")
    if chunk:
        yield _frame(chunk)


def _frame(records: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=list(READ_COLUMNS)).astype({"line": "int64"})


def _lines(path: Path) -> Iterator[str]:
    """The file's lines (line ends kept), decoded one by one, so a bad byte is reported at its line."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise IngestError(f"{path}: cannot read the file: no such file; check the path.") from None
    except OSError as err:
        raise IngestError(f"{path}: cannot read the file ({err.strerror or err}).") from err
    with handle:
        empty = True
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise IngestError(f"{path}:{number}: not UTF-8 text; save the answers as UTF-8 CSV, TSV or JSONL.") \
                    from None
            if "\x00" in text:
                raise IngestError(f"{path}:{number}: binary data (a NUL byte); this is not a CSV, TSV or JSONL "
                                  "text file.")
            empty = empty and not text.strip()
            yield text
        if empty:
            raise IngestError(f"{path}:1: the file is empty; it needs a header line and one answer per row.")


def _delimited(path: Path, delimiter: str, labelstudio: config.LabelStudioConfig | None) -> Iterator[tuple]:
    lines = _lines(path)
    first = next(lines, "")
    if columns.tab_separated(first):  # whatever the name (Label Studio's TSV export is *.csv)
        delimiter = "\t"
    kind = "TSV" if delimiter == "\t" else "CSV"
    # strict: a stray or unclosed quote fails here instead of silently swallowing later rows
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
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
    # a Label Studio CSV/TSV export: its annotator column names users the way labelstudio.annotator_id reads
    export = labelstudio_format.is_csv_export(path, header)
    if not export:
        _require_columns(path, header, line=1)
    rule = (labelstudio or config.load().labelstudio) if export else None
    wanted = ("example_id", "annotator", labelstudio_format.CHOICES) if export else USED
    position = {name: i for i, name in enumerate(header) if name in wanted}
    start = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            if "end of data" in str(err):  # the quote opened on the record's first line, not at the file's end
                raise IngestError(f"{path}:{start + 1}: malformed {kind}: a quoted field starting on this line "
                                  "is never closed; add the closing quote.") from None
            # named where the row starts: a quote opened there can swallow the lines after it
            raise IngestError(f"{path}:{start + 1}: malformed {kind} ({err}); "
                              "check the quotes of the row starting on this line.") from None
        line, start = start + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        # a spreadsheet cell crowdloop escaped against formula injection reads back as written
        cells = {name: unescape_formula(row[i].strip()) for name, i in position.items() if i < len(row)}
        problem = ""
        if len(row) != len(header):  # a lost or an extra delimiter shifts every later cell
            problem = (f"{count(len(row), 'field')} where the header has {len(header)}; "
                       f"check the {kind} delimiters and quotes on this line")
        if export:
            example, annotator, label, status = labelstudio_format.csv_answer(cells, rule, where=f"{path}:{line}")
            yield example, annotator, label, line, "", status, problem
        else:
            yield _record(cells, line, problem)


def _jsonl(path: Path) -> Iterator[tuple]:
    keys, first = set(), None
    # '\n' ends a line: JSON strings may hold U+2028 and friends, which str.splitlines would break at
    for line, raw in enumerate(_lines(path), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            yield _record({}, line, f"not valid JSON ({err.msg}, column {err.colno}); write one JSON object "
                                    "per line")
            continue
        if not isinstance(obj, dict):
            yield _record({}, line, f"expected a JSON object with example_id, annotator_id, label, "
                                    f"got {type(obj).__name__}")
            continue
        first = line if first is None else first
        keys |= obj.keys()
        cells = {k: v for k, v in obj.items() if k in USED}
        bad = [k for k, v in cells.items() if isinstance(v, (dict, list, bool))]
        problem = f"'{bad[0]}' must be a string or a number, not {json.dumps(cells[bad[0]])}" if bad else ""
        yield _record({k: "" if v is None else str(v).strip() for k, v in cells.items()}, line, problem)
    if first is not None:
        # a key missing from every object is a missing column; missing from some, an empty cell
        _require_columns(path, sorted(keys), line=first)


def _require_columns(path: Path, found: Sequence[str], *, line: int) -> None:
    if why := columns.one_column_header(found):
        raise IngestError(f"{path}:{line}: {why}.")
    near = columns.misnamed(found, USED, aliases=ALIASES)
    if near:
        raise IngestError(f"{path}:{line}: column '{near[0]}' is not one crowdloop reads; did you mean {near[1]}? "
                          f"Rename it (or remove it if it means something else); found: {', '.join(found)}.")
    missing = [c for c in ("example_id", "label") if c not in found]
    if "annotator_id" not in found and "suggested_annotator" not in found:
        missing.append("annotator_id")
    if missing:
        shown = ", ".join(name for name in found if name) or "none"
        # no option or params.yaml key renames them: say so, so that no one looks for one
        raise IngestError(f"{path}:{line}: missing column '{missing[0]}' (found: {shown}); ingest reads the columns "
                          "example_id, label and annotator_id (or the batch file's suggested_annotator) by these "
                          f"names, set by no option: rename the column that holds {missing[0]} in the file's header.")


def _record(cells: dict[str, str], line: int, problem: str = "") -> tuple:
    # an empty annotator_id cell means "the suggested annotator answered" (batch round-trip)
    annotator = cells.get("annotator_id") or cells.get("suggested_annotator", "")
    return cells.get("example_id", ""), annotator, cells.get("label", ""), line, "", "", problem


def validate_answers(answers: pd.DataFrame, *, source: str, examples: pd.DataFrame, stored: pd.DataFrame,
                     classes: Sequence[str], on_change: str, skip_invalid: bool = False) -> Ingested:
    """:class:`~crowdloop.tasks.answer_checks.AnswerCheck` on one frame (as from :func:`read_answer_file`)."""
    check = AnswerCheck(source=source, examples=examples, stored=stored, classes=classes, on_change=on_change,
                        skip_invalid=skip_invalid)
    check.feed(answers)
    return check.result()
