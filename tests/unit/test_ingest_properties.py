"""Generated answer files, in every format crowdloop ingests (CSV, TSV, JSONL): the valid rows of a
file are stored exactly once, however the file is laid out; a file broken anywhere stores nothing,
leaves data/ byte-identical and its error names the broken line.

Each example builds a store-only campaign in a temporary folder (no git), so a few hundred
files take seconds. ``FILES`` bounds the examples per test (CI: 2 tests x FILES).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdloop.tasks import store
from crowdloop.tasks.ingest import IngestError, ingest_file

FILES = 150
CLASSES = ("billing", "technical", "shipping")
EXAMPLES = [f"e{i}" for i in range(8)]
ANNOTATORS = ["a1", "a2", "b_3", "Ann.4"]
STORED = [("e0", "a1", "billing"), ("e1", "a2", "shipping")]
FORMATS = (".csv", ".tsv", ".jsonl")
SETTINGS = settings(max_examples=FILES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def answer_files(draw):
    """(format, layout, rows): rows are (example, annotator, label or ''), one label per pair, repeats allowed."""
    answers = draw(st.dictionaries(st.tuples(st.sampled_from(EXAMPLES), st.sampled_from(ANNOTATORS)),
                                   st.sampled_from(CLASSES + ("",)), min_size=1, max_size=12))
    answers |= {(e, a): label for e, a, label in STORED if (e, a) in answers}  # stored pairs agree with the store
    rows = list(answers.items())
    rows += draw(st.lists(st.sampled_from(rows), max_size=3))  # the same row twice
    rows = draw(st.permutations(rows))
    layout = {"columns": draw(st.permutations(["example_id", "annotator_id", "label", "note"])),
              "pad": draw(st.booleans()), "blank": draw(st.booleans()), "crlf": draw(st.booleans()),
              "bom": draw(st.booleans())}
    return draw(st.sampled_from(FORMATS)), layout, [(e, a, label) for (e, a), label in rows]


def _lines(fmt: str, layout: dict, rows: list[tuple]) -> tuple[list[str], list[int]]:
    """The file's lines (without line ends) and each row's 1-based line number."""
    pad = " " if layout["pad"] else ""
    lines, at = [], []
    if fmt != ".jsonl":
        lines.append(("," if fmt == ".csv" else "\t").join(layout["columns"]))
    for i, (e, a, label) in enumerate(rows):
        if layout["blank"] and i % 3 == 1:
            lines.append("")
        cells = {"example_id": e, "annotator_id": a, "label": label, "note": f"row {i}, ok"}
        if fmt == ".jsonl":
            lines.append(json.dumps({c: cells[c] for c in layout["columns"]}))
        else:
            quoted = {c: f'"{v}"' if "," in v else f"{pad}{v}{pad}" for c, v in cells.items()}
            lines.append(("," if fmt == ".csv" else "\t").join(quoted[c] for c in layout["columns"]))
        at.append(len(lines))
    return lines, at


def _write(folder: Path, fmt: str, layout: dict, lines: list[str]) -> Path:
    path = folder / f"answers{fmt}"
    text = ("\r\n" if layout["crlf"] else "\n").join(lines) + "\n"
    path.write_bytes((b"\xef\xbb\xbf" if layout["bom"] else b"") + text.encode())
    return path


def _campaign(folder: Path) -> store.Campaign:
    campaign = store.Campaign(folder / "camp")
    store.write_examples(campaign, pd.DataFrame({"example_id": EXAMPLES, "text": EXAMPLES, "split": "pool",
                                                 "gold": None}))
    store.append_annotations(campaign, pd.DataFrame(STORED, columns=["example_id", "annotator_id", "label"]),
                             round=0, source="initial")
    return campaign


@SETTINGS
@given(answer_files())
def test_the_valid_rows_of_any_layout_are_stored_exactly_once(generated):
    fmt, layout, rows = generated
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        camp = _campaign(folder)
        path = _write(folder, fmt, layout, _lines(fmt, layout, rows)[0])
        ingest_file(camp, path, classes=CLASSES, on_change="reject")
        ingest_file(camp, path, classes=CLASSES, on_change="reject")  # twice: nothing more
        stored = store.read_annotations(camp)
        expected = {(e, a, label) for e, a, label in rows if label} | set(STORED)
        assert len(stored) == len(expected)
        assert set(map(tuple, stored[["example_id", "annotator_id", "label"]].values.tolist())) == expected


@SETTINGS
@given(st.sampled_from(["latest", "keep_both"]),
       st.lists(st.lists(st.tuples(st.sampled_from(EXAMPLES[:3]), st.sampled_from(ANNOTATORS[:2]),
                                   st.sampled_from(CLASSES)), min_size=1, max_size=5), min_size=2, max_size=4),
       st.randoms(use_true_random=False))
def test_files_ingested_again_in_any_order_change_nothing(on_change, files, random):
    """Answers that change from file to file (and within one), under the policies that store changes: once
    every file is in, ingesting any of them again stores nothing and leaves every answer in force as it was.
    Each answer comes from one file (an answer another file gave too is the documented limit of ``latest``:
    from a file of another name it is a change back), so files repeat none of another's."""
    from crowdloop.tasks import round_data

    given, own = set(STORED), []
    for rows in files:
        own.append([row for row in rows if row not in given])
        given |= set(rows)
    files = [rows for rows in own if rows]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        camp = _campaign(folder)
        paths = []
        for i, rows in enumerate(files):
            paths.append(folder / f"f{i}.csv")
            paths[-1].write_text("example_id,annotator_id,label\n" + "".join(f"{e},{a},{c}\n" for e, a, c in rows))
            ingest_file(camp, paths[-1], classes=CLASSES, on_change=on_change)
        before = store.read_annotations(camp)
        random.shuffle(paths)
        for path in paths:
            assert ingest_file(camp, path, classes=CLASSES, on_change=on_change).new.empty, path.name
        after = store.read_annotations(camp)
        assert len(after) == len(before)
        in_force = [round_data.in_force(frame, on_change=on_change).sort_values(["example_id", "annotator_id"])
                    [["example_id", "annotator_id", "label"]].values.tolist() for frame in (before, after)]
        assert in_force[0] == in_force[1]


BREAKS = {  # how a row goes wrong: each turns one line of a valid file into a broken one
    "unknown example": lambda line, fmt: re.sub(r"\be(\d)\b", r"zz\1", line, count=1),
    "label not a class": lambda line, fmt: re.sub("|".join(CLASSES), "refund", line, count=1),
    "control character in an id": lambda line, fmt: re.sub("|".join(sorted(ANNOTATORS, key=len, reverse=True)),
                                                           "a\x07b", line, count=1),
    "a field lost": lambda line, fmt: line[:-1] if fmt == ".jsonl" else line.rsplit("," if fmt == ".csv" else "\t", 1)[0],
    "not UTF-8": lambda line, fmt: line + "\udcff",
    "a NUL byte": lambda line, fmt: line + "\x00",
}


@SETTINGS
@given(answer_files(), st.sampled_from(sorted(BREAKS)), st.integers(min_value=0))
def test_a_file_broken_at_any_row_stores_nothing_and_names_the_line(generated, kind, pick):
    fmt, layout, rows = generated
    lines, at = _lines(fmt, layout, rows)
    answered = [i for i, (e, a, label) in enumerate(rows) if label]
    if not answered:
        return
    row = answered[pick % len(answered)]
    number = at[row]
    lines[number - 1] = BREAKS[kind](lines[number - 1], fmt)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        camp = _campaign(folder)
        path = folder / f"answers{fmt}"
        text = ("\r\n" if layout["crlf"] else "\n").join(lines) + "\n"
        path.write_bytes((b"\xef\xbb\xbf" if layout["bom"] else b"") + text.encode("utf-8", "surrogateescape"))
        before = store.data_hash(camp)
        try:
            ingest_file(camp, path, classes=CLASSES, on_change="reject")
        except IngestError as err:
            assert str(err).startswith(f"{path}:{number}: "), (kind, str(err))
        else:
            raise AssertionError(f"{kind} on line {number} was stored:\n{text}")
        assert store.data_hash(camp) == before
