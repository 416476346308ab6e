"""Checking answers against the campaign: which rows are stored, which are refused and why.

:class:`AnswerCheck` takes an answer file's rows chunk by chunk (so a file larger than
memory streams through; what it keeps is one entry per answer, not per row) and
decides each answered row: new, already stored, or refused with a reason. An annotator
changing an answer is decided by ``ingest.on_change`` (params.yaml): ``reject`` refuses
the row, ``keep_both`` and ``latest`` store it (:func:`crowdloop.tasks.round_data.in_force`
then reads both as two votes, or the newer one as the annotator's answer). The same
answer twice is stored once. Values are compared as stripped text; labels must be
class names exactly as in params.yaml (a class may be named "1", so indices are not
accepted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks import labelstudio_format
from crowdloop.tasks.errors import IngestError
from crowdloop.tasks.schema import ANSWER_COLUMNS
from crowdloop.tasks.wording import count, word

# Control characters break CSV rows and terminals; annotator ids are data, so none gets in.
# (An id that a spreadsheet would run as a formula is stored as it is: every CSV written for
# people escapes it, tasks/files.people_csv.)
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REFUSED_COLUMNS = ("line", "reason", *ANSWER_COLUMNS)


@dataclass(frozen=True)
class Ingested:
    """What one answer file brings.

    ``new``: the answered rows not stored before (schema.ANSWER_COLUMNS), once each, in
    file order. ``refused``: with ``skip_invalid``, the rows left out (REFUSED_COLUMNS:
    line, reason, example_id, annotator_id, label). ``round`` and ``part``: the round
    they are filed under and the part file that holds them, once stored (None before,
    or when nothing was new); ``refused_file``: where the refused rows were written.
    ``skipped`` and ``empty``: Label Studio annotations that were skipped (cancelled) or chose
    no class; counted, never stored.
    """

    source: str
    new: pd.DataFrame
    already_stored: int   # answered rows identical to stored annotations
    unanswered: int       # rows with an empty label (tasks without annotations)
    repeated: int = 0     # rows repeating an answer given earlier in the same file (stored once)
    replaced: int = 0     # of already_stored, under latest: this file's answers that a later answer replaced
    skipped: int = 0
    empty: int = 0
    refused: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REFUSED_COLUMNS)))
    round: int | None = None
    part: Path | None = None
    refused_file: Path | None = None


class AnswerCheck:
    """Check an answer file's rows against the campaign, one chunk at a time.

    Parameters
    ----------
    source : the file as the user named it, for messages
    examples : DataFrame with schema.EXAMPLE_COLUMNS
    stored : DataFrame with schema.ANNOTATION_COLUMNS, the annotations already kept
    classes : class names, in order
    on_change : ingest.on_change, what an annotator changing an answer does
    skip_invalid : refuse bad rows and keep the rest, instead of failing on the first
    """

    def __init__(self, *, source: str, examples: pd.DataFrame, stored: pd.DataFrame, classes: Sequence[str],
                 on_change: str, skip_invalid: bool = False):
        self.source, self.on_change, self.skip_invalid = source, on_change, skip_invalid
        self.split = dict(zip(_text(examples["example_id"]), examples["split"]))
        self.classes = [str(c) for c in classes]
        # (example, annotator) -> [(label, where, came)], oldest first; "where" names the round and file, or the
        # line; "came" is a stored answer's source (``ingest:<file name>``), '' for a row of this file
        self.answers: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        self.origin = stored_source(Path(source))  # what this file's rows are stored as
        sources = _text(stored["source"]) if "source" in stored else [""] * len(stored)
        for e, a, label, r, came in zip(_text(stored["example_id"]), _text(stored["annotator_id"]),
                                        _text(stored["label"]), stored["round"], sources):
            self.answers.setdefault((e, a), []).append((label, stored_at(r, came), came))
        self.new: list[tuple[str, str, str]] = []
        self.refused: list[tuple] = []
        self.problems = 0
        self.already = 0
        self.repeated = 0
        self.replaced = 0  # under latest: rows repeating this file's stored answer that a later one replaced
        self.counts = {"unanswered": 0, labelstudio_format.SKIPPED: 0, labelstudio_format.EMPTY: 0}
        self.counted: set[tuple[str, str]] = set()  # stored answers met again, counted once each

    def feed(self, rows: pd.DataFrame) -> None:
        """Check a chunk: DataFrame with example_id, annotator_id, label, line and (optionally) task,
        status (a Label Studio annotation without a class) and problem, a reason the reader already
        found (a short row, a line that is not JSON)."""
        columns = [_text(rows[c]) for c in ANSWER_COLUMNS]
        extra = [_text(rows[c]) if c in rows else [""] * len(rows) for c in ("task", "status", "problem")]
        for example, annotator, label, line, task, status, problem in zip(*columns, rows["line"], *extra):
            if not problem and (status or not label):
                self.counts[status or "unanswered"] += 1
                continue
            where = f"in task {task}" if task else f"on line {line}"
            problem = problem or self._problem(example, annotator, label, where)
            if problem:
                self._refuse(int(line), problem, (example, annotator, label), task)

    def result(self) -> Ingested:
        """What to store; raises IngestError (the first problem, the others counted) unless ``skip_invalid``."""
        if self.problems and not self.skip_invalid:
            more = self.problems - 1
            tail = f" ({count(more, 'more row')} below also {word(more, 'fails', 'fail')})" if more else ""
            raise IngestError(f"{self.first}{tail}.")
        return Ingested(source=self.source, new=pd.DataFrame(self.new, columns=list(ANSWER_COLUMNS)),
                        already_stored=self.already, unanswered=self.counts["unanswered"], repeated=self.repeated,
                        replaced=self.replaced,
                        skipped=self.counts[labelstudio_format.SKIPPED], empty=self.counts[labelstudio_format.EMPTY],
                        refused=pd.DataFrame(self.refused, columns=list(REFUSED_COLUMNS)))

    def _refuse(self, line: int, reason: str, cells: tuple, task: str) -> None:
        self.problems += 1
        if self.problems == 1:  # the error names the first, where it is: its line, or its Label Studio task
            self.first = f"{self.source}: task {task}: {reason}" if task else f"{self.source}:{line}: {reason}"
        if self.skip_invalid:
            self.refused.append((line, reason, *cells))

    def _problem(self, example: str, annotator: str, label: str, where: str) -> str | None:
        """What is wrong with an answered row, or None (then it is counted as new or already stored)."""
        problem = row_problem(example, annotator, label, self.split, self.classes)
        if problem:
            return problem
        key = (example, annotator)
        given = self.answers.get(key, [])
        same = [(where, came) for g, where, came in given if g == label]
        # Under latest an answer given again after a different one is a change back, stored again, unless
        # this file gave it before (a file of the same name: an old ingest run again, or the file grown since)
        again = given[-1][0] == label if given else False
        from_here = any(came == self.origin for _, came in same)
        if same and (again or from_here or self.on_change != "latest"):
            # the same answer again counts once: as already stored (once per answer) or not at all (in this file)
            if not same[0][0].startswith("in round"):
                self.repeated += 1
            elif key not in self.counted:
                self.counted.add(key)
                self.already += 1
                self.replaced += self.on_change == "latest" and not again
            return None
        if given and self.on_change == "reject":
            before, where, _ = given[-1]
            return (f"annotator '{annotator}' gave example '{example}' the label '{before}' {where} but this row "
                    f"says '{label}'; keep one of the two (or set ingest.on_change in params.yaml to keep_both "
                    "or latest)")
        self.answers.setdefault(key, []).append((label, where, ""))
        self.new.append((example, annotator, label))
        return None


def stored_source(path: Path) -> str:
    """The ``source`` an answer file's stored rows carry (store.append_annotations): ``ingest:<file name>``."""
    return f"ingest:{path.name}"


def stored_at(round: int, source: str) -> str:
    """Where a stored answer came from, for messages: ``in round 3 (ingested from answers.csv)``;
    ``source`` is the annotations' ``source`` (store.append_annotations)."""
    kind, _, name = source.partition(":")
    if kind == "ingest" and name:
        came = f"ingested from {name}"
    else:
        came = {"initial": "the campaign's initial answers", "simulated": "simulated"}.get(source, source)
    return f"in round {round}" + (f" ({came})" if came else "")


def row_problem(example: str, annotator: str, label: str, split: dict, classes: list[str]) -> str | None:
    """What is wrong with one answered row on its own, or None."""
    if not example:
        return "empty example_id; give each row the id of one of the campaign's examples (a batch.csv lists them)"
    if example not in split:
        return f"unknown example id '{example}'; use the ids of the campaign's examples (a batch.csv lists them)"
    if split[example] != "pool":
        return f"example '{example}' belongs to the gold test split, which is never annotated; remove this row"
    if not annotator:
        return (f"no annotator id for example '{example}'; fill in annotator_id "
                "(add the column if needed) with who answered")
    if CONTROL.search(annotator):
        return (f"annotator id {annotator!r} holds a control character (a tab, a line break, ...), which breaks "
                "the CSV files and terminals it is shown in; use an id of letters, digits and punctuation")
    if label not in classes:
        close = [c for c in classes if c.casefold() == label.casefold()]
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"label '{label}' is not a class{hint}; write one of {', '.join(classes)} "
                "exactly as in params.yaml")
    return None


def _text(values) -> list[str]:
    # cell by cell: Series.fillna("") on numbers (a DataFrame's int ids) warns that it downcasts
    return [_id_text(value) for value in values]


def _id_text(value) -> str:
    """One cell as an id's text: '' for a gap; a whole float as the int it was (pandas turns a column of
    int ids with a gap into floats: 7 -> 7.0, which would name nobody)."""
    if value is None or (not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()
