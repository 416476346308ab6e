"""The in-memory structure every importer produces, and the two layouts on DataFrames.

:class:`Replay` is what a simulation plays back. :func:`long_frame` (one annotation a
row) and :func:`wide_frame` (one column per annotator) build it from DataFrames that
:mod:`crowdloop.tasks.importers` has read from files or from ``datasets``; every
result passes :func:`check_replay`.

Ids and labels become text (:mod:`crowdloop.tasks.import_values`); errors name the file,
the line and the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks.import_values import ImportFormatError, Origin, ids, labels, need_columns
from crowdloop.tasks.schema import ANSWER_COLUMNS, EXAMPLE_COLUMNS, SPLITS, TEXT_SEP

ANSWERS = list(ANSWER_COLUMNS)
# column names that hold gold labels far more often than one annotator's (wide layout)
GOLD_NAMES = ("label", "gold")


@dataclass(frozen=True)
class Replay:
    """A labeled dataset a simulation replays.

    examples : DataFrame of shape (N, 4), columns schema.EXAMPLE_COLUMNS: example_id (str),
        text (str), split ('pool' or 'test'), gold (class name or None)
    initial : DataFrame of shape (A0, 3), example_id, annotator_id, label: the annotations
        collected at the start
    uncollected : DataFrame of shape (A, 3), same columns: the annotations not yet collected, which
        simulated annotators hand out
    classes : the class names, in the order of the model's outputs
    """

    examples: pd.DataFrame
    initial: pd.DataFrame
    uncollected: pd.DataFrame
    classes: tuple[str, ...]


def example_table(frame: pd.DataFrame, origin: Origin, *, id_col: str, text_cols: Sequence[str],
                  text_sep: str = TEXT_SEP, split: str = "pool", gold: pd.Series | None = None) -> pd.DataFrame:
    """EXAMPLE_COLUMNS from one row per example; text columns are joined with ``text_sep``."""
    need_columns(frame, origin, fixed=[id_col, *text_cols])  # the callers check the columns an option names
    text = frame[list(text_cols)].fillna("").astype(str).agg(text_sep.join, axis=1)
    return pd.DataFrame({"example_id": ids(frame[id_col], origin, id_col, unique=True), "text": text,
                         "split": split, "gold": None if gold is None else gold})


def need_rows(frame: pd.DataFrame, origin: Origin) -> None:
    """Fail if ``frame`` has no rows (a file with only its header line)."""
    if frame.empty:
        raise ImportFormatError(f"{origin.name}: no rows below the header; there is nothing to import.")


def melt_annotators(frame: pd.DataFrame, origin: Origin, *, id_col: str, annotator_cols: Sequence[str],
                    label_names: dict | None) -> pd.DataFrame:
    """Wide annotator columns as ANSWERS rows in file order, indexed by the row of ``frame``; empty cells
    are skipped."""
    need_columns(frame, origin, fixed=[id_col, *annotator_cols])
    example_ids = ids(frame[id_col], origin, id_col, unique=False).to_numpy(dtype=object)
    cells = np.column_stack([labels(frame[c], label_names, origin, c).to_numpy(dtype=object)
                             for c in annotator_cols])  # (N, M)
    # built by position rather than DataFrame.melt, which fails on an annotator column named
    # like one of its outputs ('label', 'example_id'); ravel reads row by row: file order
    long = pd.DataFrame({"example_id": np.repeat(example_ids, len(annotator_cols)),
                         "annotator_id": np.tile(np.array([str(c) for c in annotator_cols], dtype=object), len(frame)),
                         "label": cells.ravel()}, index=np.repeat(frame.index.to_numpy(), len(annotator_cols)))
    return long.dropna(subset=["label"])


def long_frame(annotations: pd.DataFrame, origin: Origin, *, examples: pd.DataFrame | None = None,
               examples_origin: Origin | None = None, example_col: str = "example_id",
               annotator_col: str = "annotator_id", label_col: str = "label", gold_col: str | None = None,
               examples_id_col: str | None = None, text_cols: Sequence[str] = ("text",),
               text_sep: str = TEXT_SEP, examples_gold_col: str | None = None,
               label_names: dict | None = None) -> Replay:
    """One annotation a row; texts (and gold) from ``examples`` or, without it, from the same rows.

    annotations : DataFrame of shape (A, ...) with the example, annotator and label columns
    examples : DataFrame of shape (N, ...), one row per example, or None
    Rows with an empty label are skipped. Every annotation is uncollected; none is initial.
    """
    need_columns(annotations, origin, example_col=example_col, annotator_col=annotator_col, label_col=label_col,
                 gold_col=gold_col, text_cols=text_cols if examples is None else None)
    need_rows(annotations, origin)
    if examples is None and examples_gold_col:
        raise ImportFormatError(f"{origin.name}: examples_gold_col needs an examples file; use gold_col "
                                "for gold stored beside the annotations.")
    if gold_col and examples_gold_col:
        raise ImportFormatError(f"{origin.name}: give gold_col or examples_gold_col, not both.")
    rows = annotations.reset_index(drop=True)
    example_ids = ids(rows[example_col], origin, example_col, unique=False)
    answers = pd.DataFrame({"example_id": example_ids,
                            "annotator_id": ids(rows[annotator_col], origin, annotator_col, unique=False),
                            "label": labels(rows[label_col], label_names, origin, label_col)})
    answers = answers.dropna(subset=["label"])
    twice = answers.duplicated(["example_id", "annotator_id"])
    if twice.any():
        row = answers.index[twice][0]
        raise ImportFormatError(f"{origin.at(row)}: annotator '{answers.at[row, 'annotator_id']}' labels "
                                f"example '{answers.at[row, 'example_id']}' a second time.")
    if examples is None:
        table = example_table(rows[~example_ids.duplicated()], origin, id_col=example_col, text_cols=text_cols,
                              text_sep=text_sep)
    else:
        examples_origin = examples_origin or origin
        items = examples.reset_index(drop=True)
        id_col = examples_id_col or example_col
        need_columns(items, examples_origin, examples_id_col=id_col, examples_gold_col=examples_gold_col,
                     text_cols=text_cols)
        need_rows(items, examples_origin)
        gold = labels(items[examples_gold_col], label_names, examples_origin, examples_gold_col) \
            if examples_gold_col else None
        table = example_table(items, examples_origin, id_col=id_col, text_cols=text_cols, text_sep=text_sep,
                              gold=gold)
        unknown = ~answers["example_id"].isin(set(table["example_id"]))
        if unknown.any():
            row = answers.index[unknown][0]
            raise ImportFormatError(f"{origin.at(row)}: example '{answers.at[row, 'example_id']}' is not in "
                                    f"{examples_origin.name} (column '{id_col}').")
    if gold_col:
        gold = _gold_per_example(rows, example_ids, gold_col, origin, label_names)
        table["gold"] = table["example_id"].map(gold)
    return assemble(table, pd.DataFrame(columns=ANSWERS), answers, origin=origin, label_names=label_names,
                    gold_origin=examples_origin if examples_gold_col else origin, answers_at=origin)


def _gold_per_example(rows: pd.DataFrame, example_ids: pd.Series, gold_col: str, origin: Origin,
                      label_names: dict | None) -> dict:
    """``{example_id: gold}`` from a gold column beside the annotations; a conflict is an error."""
    gold = labels(rows[gold_col], label_names, origin, gold_col)
    seen: dict = {}
    for row, (item, value) in enumerate(zip(example_ids, gold)):
        if value is None:
            continue
        if seen.setdefault(item, value) != value:
            raise ImportFormatError(f"{origin.at(row)}: example '{item}' has gold '{value}' in column "
                                    f"'{gold_col}' but '{seen[item]}' on an earlier line; one gold per example.")
    return seen


def wide_frame(frame: pd.DataFrame, origin: Origin, *, id_col: str = "id", text_col: str = "text",
               annotator_cols: Sequence[str] | None = None, gold_col: str | None = None,
               label_names: dict | None = None) -> Replay:
    """cleanlab's ``labels_multiannotator`` layout: one row per example, one column per annotator.

    frame : DataFrame of shape (N, 2 + M) (+ gold); empty cells mean "not labeled".
    ``annotator_cols`` None means every column except id, text and gold. All are uncollected.
    """
    rows = frame.reset_index(drop=True)
    need_columns(rows, origin, id_col=id_col, text_col=text_col, gold_col=gold_col, annotator_cols=annotator_cols)
    need_rows(rows, origin)
    cols = list(annotator_cols) if annotator_cols is not None else \
        [c for c in rows.columns if c not in (id_col, text_col, gold_col)]
    if not cols:
        raise ImportFormatError(f"{origin.name}: no annotator columns besides '{id_col}' and '{text_col}'.")
    goldish = [c for c in cols if annotator_cols is None and str(c).strip().lower() in GOLD_NAMES]
    if goldish:  # an annotator named 'label' is unlikely; a gold column read as one skews every result
        raise ImportFormatError(
            f"{origin.name}: column '{goldish[0]}' would be read as an annotator's labels (every column besides "
            f"'{id_col}' and '{text_col}' is one); if it holds gold labels pass --gold-col {goldish[0]} "
            "(gold_col), else list the annotator columns with --annotator-cols (annotator_cols).")
    gold = labels(rows[gold_col], label_names, origin, gold_col) if gold_col else None
    table = example_table(rows, origin, id_col=id_col, text_cols=(text_col,), gold=gold)
    answers = melt_annotators(rows, origin, id_col=id_col, annotator_cols=cols, label_names=label_names)
    return assemble(table, pd.DataFrame(columns=ANSWERS), answers, origin=origin, label_names=label_names,
                    answers_at=origin)


def assemble(examples: pd.DataFrame, initial: pd.DataFrame, uncollected: pd.DataFrame, *, origin: Origin,
             label_names: dict | None, gold_origin: Origin | None = None, answers_at: Origin | None = None) -> Replay:
    """The checked Replay.

    Classes are sorted numerically when they are all whole numbers, else follow the
    order of ``label_names`` values, else sort as text. ``answers_at``: the file whose
    rows the annotations' index counts, so that an error can name the line.
    """
    answers = pd.concat([f.loc[:, ANSWERS] for f in (initial, uncollected) if len(f)] or [uncollected.loc[:, ANSWERS]]
                        ).astype(str)  # the index still counts rows of answers_at
    initial, uncollected = (f.loc[:, ANSWERS].astype(str).reset_index(drop=True) for f in (initial, uncollected))
    examples = examples.loc[:, list(EXAMPLE_COLUMNS)].reset_index(drop=True)
    examples["gold"] = examples["gold"].astype(object).where(examples["gold"].notna(), None)
    given = set(answers["label"])
    gold = set(examples["gold"].dropna())
    gold_name = (gold_origin or origin).name
    if label_names is None and given and not gold <= given:
        raise ImportFormatError(
            f"{origin.name}: the gold labels {sorted(gold)} (in {gold_name}) and the annotators' labels "
            f"{sorted(given)} use different values; pass --label-names (label_names) mapping both onto the same "
            "classes (e.g. --label-names TRUE=1,FALSE=0).")
    if label_names is None and gold:
        _refuse_labels_outside_gold(answers, gold, origin=origin, gold_name=gold_name, answers_at=answers_at)
    present = given | gold
    if all(re.fullmatch(r"[+-]?\d+", c) for c in present):
        classes = sorted(present, key=int)
    elif label_names is not None:
        classes = [c for c in dict.fromkeys(map(str, label_names.values())) if c in present]
    else:
        classes = sorted(present)
    merged = [str(k) for k, v in (label_names or {}).items() if str(v) in classes]
    if len(classes) == 1 and len(merged) > 1:
        raise ImportFormatError(f"{origin.name}: found the classes {classes}; a classifier needs two, and "
                                f"--label-names (label_names) maps {', '.join(map(repr, merged))} all onto "
                                f"'{classes[0]}': give each class its own name.")
    replay = Replay(examples, initial, uncollected, tuple(classes))
    check_replay(replay, source=origin.name)
    return replay


def _refuse_labels_outside_gold(answers: pd.DataFrame, gold: set, *, origin: Origin, gold_name: str,
                                answers_at: Origin | None) -> None:
    """Fail on the first annotation whose label no gold label has: a stray value ('maybe', a typo) would
    otherwise become a class. A real class the gold set happens to miss is kept by naming it in label_names."""
    stray = answers[~answers["label"].isin(gold)]
    if stray.empty:
        return
    row, (example, annotator, label) = stray.index[0], stray.iloc[0][ANSWERS]
    where = answers_at.at(row) if answers_at is not None else origin.name
    classes = sorted(gold | {label})
    example_flag = ",".join(f"{c}={c}" for c in classes) if len(classes) <= 8 else "raw=name,..."
    raise ImportFormatError(
        f"{where}: annotator '{annotator}' gives example '{example}' the label '{label}', which is not among the "
        f"classes of the gold labels {sorted(gold)} (in {gold_name}); fix the label, or if '{label}' is a real "
        f"class list every class with --label-names (label_names), e.g. --label-names {example_flag}.")


def check_replay(replay: Replay, *, source: str = "replay") -> None:
    """Fail unless ids are unique, annotations sit on pool examples once per annotator,
    labels and gold are classes, and every test example has gold."""
    examples = replay.examples
    if tuple(examples.columns) != EXAMPLE_COLUMNS:
        raise ImportFormatError(f"{source}: examples have columns {list(examples.columns)}, "
                                f"expected {list(EXAMPLE_COLUMNS)}.")
    repeated = examples["example_id"][examples["example_id"].duplicated()]
    if len(repeated):
        raise ImportFormatError(f"{source}: example id '{repeated.iloc[0]}' appears more than once.")
    odd = set(examples["split"]) - set(SPLITS)
    if odd:
        raise ImportFormatError(f"{source}: unknown split {sorted(odd)}; use {' or '.join(SPLITS)}.")
    if len(replay.classes) < 2:
        raise ImportFormatError(f"{source}: found the classes {list(replay.classes)}; a classifier needs two.")
    both = pd.concat([replay.initial, replay.uncollected], ignore_index=True)
    pool_ids = set(examples.loc[examples["split"] == "pool", "example_id"])
    stray = both[~both["example_id"].isin(pool_ids)]
    if len(stray):
        raise ImportFormatError(f"{source}: {len(stray)} annotations are for examples that are not in the pool "
                                f"split, e.g. '{stray['example_id'].iloc[0]}'.")
    twice = both[both.duplicated(["example_id", "annotator_id"])]
    if len(twice):
        raise ImportFormatError(f"{source}: annotator '{twice['annotator_id'].iloc[0]}' labels example "
                                f"'{twice['example_id'].iloc[0]}' more than once (initial and uncollected together).")
    classes = set(replay.classes)
    outside = sorted((set(both["label"]) | set(examples["gold"].dropna())) - classes)
    if outside:
        raise ImportFormatError(f"{source}: labels {outside} are not among the classes {list(replay.classes)}.")
    test = examples[examples["split"] == "test"]
    if test["gold"].isna().any():
        raise ImportFormatError(f"{source}: test example '{test.loc[test['gold'].isna(), 'example_id'].iloc[0]}' "
                                "has no gold label; a test split needs gold labels.")
