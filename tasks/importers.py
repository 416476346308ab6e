"""Multi-annotator datasets in the formats people already have, as one :class:`Replay`.

Formats (the CLI's ``--format``):

* ``tutorial``: the cleanlab ActiveLab tutorial's files (X_labeled_full.csv,
  X_unlabeled.csv, test.csv, extra_annotations.json or, only with consent, .npy);
* ``long``: one annotation a row (CSV, TSV, JSONL, JSON, parquet) plus an optional examples file;
* ``wide``: one column per annotator (cleanlab's ``labels_multiannotator``);
* ``datasets``: anything ``datasets.load_dataset`` opens, in long or wide layout;
* ``lewidi``: the Learning-With-Disagreements shared tasks' JSON (one file, or a folder of
  ``*_train.json``, ``*_dev.json``, ``*_test.json``).

The readers only read the files they are given. :func:`crowdloop.tasks.replay_split.split_for_simulation`
then holds out the evaluation split and draws the starting annotations.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks import columns
from crowdloop.tasks.files import read_parquet
from crowdloop.tasks.import_formats import (ANSWERS, Replay, assemble, check_replay, example_table, long_frame,
                                            melt_annotators, wide_frame)
from crowdloop.tasks.import_values import ImportFormatError, Origin, labels, need_columns, normalise_value, read_json
from crowdloop.tasks.lewidi import from_lewidi
from crowdloop.tasks.schema import TEXT_SEP

__all__ = ["ImportFormatError", "Replay", "check_replay", "from_datasets", "from_lewidi", "from_long", "from_tutorial",
           "from_wide", "load", "normalise_value", "read_table"]

TABLES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def load(fmt: str, source: Path | str, **options) -> Replay:
    """Dispatch on the format name: 'tutorial', 'long', 'wide', 'datasets' or 'lewidi'."""
    readers = {"tutorial": from_tutorial, "long": from_long, "wide": from_wide, "datasets": from_datasets,
               "lewidi": from_lewidi}
    if fmt not in readers:
        raise ImportFormatError(f"unknown format '{fmt}'; use one of {', '.join(readers)}.")
    return readers[fmt](source, **options)


def read_table(path: Path | str) -> tuple[pd.DataFrame, Origin]:
    """The rows of a CSV, TSV, JSONL, JSON or parquet file, text cells as str, and their origin."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    origin = Origin(str(path), path, kind)
    if path.is_dir():
        raise ImportFormatError(f"{path} is a folder; this format reads a file ({', '.join(TABLES)}); folders are "
                                "read by --format tutorial (the ActiveLab tutorial's files) and lewidi.")
    if f".{kind}" not in TABLES:
        raise ImportFormatError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(TABLES)}.")
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file.")
    try:
        if kind in ("csv", "tsv"):
            # every cell as text, only empty cells missing: '0e12' or 'NA' must stay what they are
            return pd.read_csv(path, sep="\t" if kind == "tsv" or _tab_separated(path) else ",", dtype=str,
                               keep_default_na=False, na_values=[""]), origin
        if kind in ("jsonl", "json"):
            return pd.read_json(path, lines=kind == "jsonl", dtype=False, convert_dates=False), origin
        return read_parquet(path), origin
    except OSError as err:
        raise ImportFormatError(f"{path}: cannot read the file ({err.strerror or err}).") from err
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImportFormatError(f"{path}: cannot parse it as {kind.upper()} ({reason}).") from err


def _tab_separated(path: Path) -> bool:
    """Whether the file's header is tab-separated: a TSV named .csv is read as one, as ingest reads answer files."""
    with open(path, encoding="utf-8", errors="replace") as file:
        return columns.tab_separated(file.readline())


def from_tutorial(directory: Path | str, *, allow_pickle: bool = False, label_names: dict | None = None) -> Replay:
    """The ActiveLab tutorial's files in ``directory``.

    X_labeled_full.csv (id, text, one column per annotator) gives pool examples and the
    ``initial`` annotations; X_unlabeled.csv (id, text) more pool examples; test.csv
    (text, annotator columns, label, id) the test split with gold = label; the
    uncollected annotations come from extra_annotations.json (``{id: {annotator:
    label}}``) or, only with ``allow_pickle``, from the pickled extra_annotations.npy.
    """
    directory = Path(directory)
    if directory.is_file():
        raise ImportFormatError(f"{directory} is a file; the tutorial format (the default --format) reads a folder "
                                "of X_labeled_full.csv, X_unlabeled.csv, test.csv and extra_annotations.json: "
                                "name the format of this file (--format long, wide, datasets or lewidi).")
    if directory.is_dir() and not (directory / "X_labeled_full.csv").is_file():
        others = sorted({p.suffix for p in directory.iterdir() if p.is_file()} - {""})
        raise ImportFormatError(f"{directory}: no X_labeled_full.csv, which the tutorial format (the default "
                                "--format) reads with X_unlabeled.csv, test.csv and extra_annotations.json; "
                                f"this folder holds {', '.join(others) or 'no'} files: name its format "
                                "(--format lewidi for Le-Wi-Di JSON files).")
    labeled, labeled_at = read_table(directory / "X_labeled_full.csv")
    unlabeled, unlabeled_at = read_table(directory / "X_unlabeled.csv")
    test, test_at = read_table(directory / "test.csv")
    need_columns(test, test_at, fixed=["label"])
    examples = pd.concat([
        example_table(labeled, labeled_at, id_col="id", text_cols=("text",)),
        example_table(unlabeled, unlabeled_at, id_col="id", text_cols=("text",)),
        example_table(test, test_at, id_col="id", text_cols=("text",), split="test",
                      gold=labels(test["label"], label_names, test_at, "label")),
    ], ignore_index=True)
    annotators = [c for c in labeled.columns if c not in ("id", "text")]
    initial = melt_annotators(labeled, labeled_at, id_col="id", annotator_cols=annotators,
                              label_names=label_names)
    extra, extra_at = _extra_annotations(directory, allow_pickle=allow_pickle)
    uncollected = _answers_from_mapping(extra, extra_at, label_names)
    missing = sorted(set(uncollected["example_id"]) - set(examples["example_id"]))
    if missing:
        raise ImportFormatError(f"{extra_at.name}: {len(missing)} examples are in neither X_labeled_full.csv "
                                f"nor X_unlabeled.csv, e.g. '{missing[0]}'.")
    return assemble(examples, initial, uncollected, origin=Origin(str(directory)), label_names=label_names)


def _extra_annotations(directory: Path, *, allow_pickle: bool) -> tuple[dict, Origin]:
    json_path, npy_path = directory / "extra_annotations.json", directory / "extra_annotations.npy"
    if json_path.is_file():
        extra = read_json(json_path)
        origin = Origin(str(json_path))
    elif npy_path.is_file():
        if not allow_pickle:
            raise ImportFormatError(
                f"{npy_path} is a pickle and unpickling runs code stored in the file: convert it to "
                "extra_annotations.json, or pass allow_pickle=True (--allow-pickle) only if you trust its source.")
        warnings.warn(f"unpickling {npy_path}: this runs code from the file (allowed by allow_pickle)",
                      UserWarning, stacklevel=3)
        try:
            extra = np.load(npy_path, allow_pickle=True).item()
        except Exception as err:  # unpickling can fail in any way the file's content chooses
            raise ImportFormatError(f"{npy_path}: cannot load it as a pickled dict ({err}).") from err
        origin = Origin(str(npy_path))
    else:
        raise ImportFormatError(f"{directory}: neither extra_annotations.json nor extra_annotations.npy is there; "
                                "the simulation needs the not-yet-collected annotations.")
    if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
        raise ImportFormatError(f"{origin.name}: expected {{example_id: {{annotator: label}}}}.")
    return extra, origin


def _answers_from_mapping(extra: dict, origin: Origin, label_names: dict | None) -> pd.DataFrame:
    rows = [(normalise_value(e), normalise_value(a), label) for e, answers in extra.items()
            for a, label in answers.items()]
    frame = pd.DataFrame(rows, columns=ANSWERS)
    # the index names each entry, so that a bad label is reported by example and annotator
    frame.index = [f"example '{e}', annotator '{a}'" for e, a, _ in rows]
    frame["label"] = labels(frame["label"], label_names, origin, "label")
    return frame.dropna(subset=["label"]).reset_index(drop=True)


def from_long(annotations_file: Path | str, *, examples_file: Path | str | None = None,
              example_col: str = "example_id", annotator_col: str = "annotator_id", label_col: str = "label",
              gold_col: str | None = None, examples_id_col: str | None = None, text_cols: Sequence[str] = ("text",),
              text_sep: str = TEXT_SEP, examples_gold_col: str | None = None,
              label_names: dict | None = None) -> Replay:
    """One annotation a row; texts (and gold) from ``examples_file`` or the annotations file.

    Gold comes from ``gold_col`` (in the annotations file, one value per example) or
    ``examples_gold_col`` (in the examples file). Every annotation is uncollected.
    """
    annotations, origin = read_table(annotations_file)
    examples, examples_origin = read_table(examples_file) if examples_file is not None else (None, None)
    return long_frame(annotations, origin, examples=examples, examples_origin=examples_origin,
                      example_col=example_col, annotator_col=annotator_col, label_col=label_col,
                      gold_col=gold_col, examples_id_col=examples_id_col, text_cols=tuple(text_cols),
                      text_sep=text_sep, examples_gold_col=examples_gold_col, label_names=label_names)


def from_wide(file: Path | str, *, id_col: str = "id", text_col: str = "text",
              annotator_cols: Sequence[str] | None = None, gold_col: str | None = None,
              label_names: dict | None = None) -> Replay:
    """One column per annotator, empty where they did not label; every annotation is uncollected."""
    frame, origin = read_table(file)
    return wide_frame(frame, origin, id_col=id_col, text_col=text_col, annotator_cols=annotator_cols,
                      gold_col=gold_col, label_names=label_names)


def from_datasets(path_or_name: Path | str, *, split: str = "train", layout: str = "long",
                  text_col: str | Sequence[str] = "text", id_col: str | None = None,
                  annotator_col: str = "annotator_id", label_col: str = "label",
                  annotator_cols: Sequence[str] | None = None, gold_col: str | None = None,
                  text_sep: str = TEXT_SEP, label_names: dict | None = None) -> Replay:
    """Anything ``datasets.load_dataset`` opens: a local csv/tsv/json(l)/parquet file or a hub id.

    ``layout`` 'long' (one annotation a row; ``id_col`` defaults to 'example_id') or
    'wide' (one column per annotator; ``id_col`` defaults to 'id'). A hub id needs the
    network; offline it fails with :class:`ImportFormatError`.
    """
    if layout not in ("long", "wide"):
        raise ImportFormatError(f"{path_or_name}: layout must be 'long' or 'wide', not '{layout}'.")
    frame = _load_dataset(path_or_name, split=split)
    origin = Origin(f"{path_or_name} [{split}]")
    text_cols = (text_col,) if isinstance(text_col, str) else tuple(text_col)
    if layout == "wide":
        if len(text_cols) != 1:
            raise ImportFormatError(f"{origin.name}: the wide layout takes one text column.")
        return wide_frame(frame, origin, id_col=id_col or "id", text_col=text_cols[0],
                          annotator_cols=annotator_cols, gold_col=gold_col, label_names=label_names)
    need_columns(frame, origin, id_col=id_col or "example_id", text_col=text_cols)  # this reader's keywords
    return long_frame(frame, origin, example_col=id_col or "example_id", annotator_col=annotator_col,
                      label_col=label_col, gold_col=gold_col, text_cols=text_cols, text_sep=text_sep,
                      label_names=label_names)


def _load_dataset(path_or_name: Path | str, *, split: str) -> pd.DataFrame:
    import datasets  # slow to import; only this format needs it

    path = Path(path_or_name)
    builders = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json"}
    local = path.suffix.lower() in builders
    if local and not path.is_file():
        raise ImportFormatError(f"{path}: no such file.")
    # Importing must leave no files behind: streaming writes no Arrow cache, and the lock
    # files datasets still makes go to a temporary folder removed on return.
    try:
        with tempfile.TemporaryDirectory(prefix="crowdloop-datasets-") as cache:
            if local:
                options = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
                data = datasets.load_dataset(builders[path.suffix.lower()], data_files=str(path), split=split,
                                             streaming=True, cache_dir=cache, **options)
            else:
                data = datasets.load_dataset(str(path_or_name), split=split, streaming=True, cache_dir=cache)
            frame = pd.DataFrame(list(data))
    except Exception as err:  # datasets raises many types (offline, not found, bad file, bad split)
        reason = (str(err).splitlines() or [type(err).__name__])[0][:300]
        hint = "" if local or path.exists() else "; a hub id needs network access (is HF_HUB_OFFLINE set?)"
        raise ImportFormatError(f"{path_or_name}: datasets.load_dataset could not open split '{split}' "
                                f"({type(err).__name__}: {reason}){hint}.") from err
    if frame.empty:
        raise ImportFormatError(f"{path_or_name}: split '{split}' has no rows.")
    return frame
