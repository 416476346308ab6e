"""Multi-annotator datasets in the formats people already have, as one :class:`Replay`.

A replay is what a simulation plays back: the examples (pool and gold test
split), the annotations collected at the start, and the pool of annotations not
yet collected, which simulated annotators hand out. Formats:

* ``tutorial``: the cleanlab ActiveLab tutorial's files (X_labeled_full.csv,
  X_unlabeled.csv, test.csv, extra_annotations.json or, only with consent, .npy);
* ``long``: one annotation a row (CSV, TSV, JSONL) plus an optional examples file;
* ``wide``: one column per annotator (cleanlab's ``labels_multiannotator``);
* ``datasets``: anything ``datasets.load_dataset`` opens, in long or wide layout.

Labels are normalised to strings (``1``, ``1.0`` and ``"1"`` are one class) and
may be renamed with ``label_names``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from crowdloop.tasks.store import EXAMPLE_COLUMNS

ANSWERS = ["example_id", "annotator_id", "label"]


class ImportFormatError(ValueError):
    """A dataset file that cannot be imported; the message names the file and column."""


@dataclass(frozen=True)
class Replay:
    """A labelled dataset a simulation replays.

    examples: store.EXAMPLE_COLUMNS; initial and pool: example_id, annotator_id, label
    (class names); classes: the class names in order.
    """

    examples: pd.DataFrame
    initial: pd.DataFrame
    pool: pd.DataFrame
    classes: tuple[str, ...]


def load(fmt: str, source: Path, **options) -> Replay:
    """Dispatch on the format name (the CLI's ``--format``)."""
    readers = {"tutorial": from_tutorial, "long": from_long, "wide": from_wide, "datasets": from_datasets}
    if fmt not in readers:
        raise ImportFormatError(f"unknown format '{fmt}'; use one of {', '.join(readers)}.")
    return readers[fmt](source, **options)


# ---------------------------------------------------------------- label and id normalisation

def normalise_label(value) -> str | None:
    """1, 1.0, '1', '1.0' -> '1'; blanks and NaN -> None; other strings stripped."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if text == "" or text.lower() == "nan":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _ids(series: pd.Series) -> pd.Series:
    # Ids stay text: '0e12' is an id, not a number (the politeness ids are hex).
    return series.astype(str).str.strip()


def _rename(labels: pd.Series, names: dict | None, source: str) -> pd.Series:
    if names is None:
        return labels
    names = {normalise_label(k): v for k, v in names.items()}
    unknown = sorted(set(labels.dropna()) - set(names))
    if unknown:
        raise ImportFormatError(f"{source}: labels {unknown} are not in label_names {sorted(names)}.")
    return labels.map(names)


# ---------------------------------------------------------------- readers

def read_table(path: Path) -> pd.DataFrame:
    """CSV, TSV, JSONL or parquet, every column as text."""
    path = Path(path)
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if path.suffix == ".tsv":
            return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[""],
                               quoting=3)  # QUOTE_NONE: RTE texts contain stray quotes
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False).astype(object)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
    except FileNotFoundError as err:
        raise ImportFormatError(f"{path}: no such file.") from err
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ImportFormatError(f"{path}: cannot read it ({str(err).splitlines()[0]}).") from err
    raise ImportFormatError(f"{path}: unsupported extension; use .csv, .tsv, .jsonl or .parquet.")


def _need(frame: pd.DataFrame, columns: Sequence[str], source) -> None:
    for column in columns:
        if column not in frame.columns:
            raise ImportFormatError(f"{source}: missing column '{column}' "
                                    f"(found: {', '.join(map(str, frame.columns))}).")


def from_tutorial(directory: Path, *, allow_pickle: bool = False, label_names: dict | None = None) -> Replay:
    """The ActiveLab tutorial's files in ``directory``."""
    directory = Path(directory)
    labelled = read_table(directory / "X_labeled_full.csv")
    unlabelled = read_table(directory / "X_unlabeled.csv")
    test = read_table(directory / "test.csv")
    for frame, name in ((labelled, "X_labeled_full.csv"), (unlabelled, "X_unlabeled.csv")):
        _need(frame, ["id", "text"], directory / name)
    _need(test, ["id", "text", "label"], directory / "test.csv")
    annotator_cols = [c for c in labelled.columns if c not in ("id", "text")]
    initial = labelled.melt(id_vars=["id"], value_vars=annotator_cols, var_name="annotator_id",
                            value_name="label").rename(columns={"id": "example_id"})
    extra = _extra_annotations(directory, allow_pickle=allow_pickle)
    pool = pd.DataFrame([(str(e), str(a), l) for e, answers in extra.items() for a, l in answers.items()],
                        columns=ANSWERS)
    examples = pd.concat([
        pd.DataFrame({"example_id": _ids(labelled["id"]), "text": labelled["text"], "split": "pool", "gold": None}),
        pd.DataFrame({"example_id": _ids(unlabelled["id"]), "text": unlabelled["text"], "split": "pool",
                      "gold": None}),
        # test ids may coincide with training ids in other tutorial datasets: keep them apart
        pd.DataFrame({"example_id": "test-" + _ids(test["id"]), "text": test["text"], "split": "test",
                      "gold": test["label"]}),
    ], ignore_index=True)
    return _finish(examples, initial, pool, label_names, source=str(directory))


def _extra_annotations(directory: Path, *, allow_pickle: bool) -> dict:
    json_path, npy_path = directory / "extra_annotations.json", directory / "extra_annotations.npy"
    if json_path.is_file():
        try:
            return json.loads(json_path.read_text())
        except json.JSONDecodeError as err:
            raise ImportFormatError(f"{json_path}:{err.lineno}: not valid JSON ({err.msg}).") from err
    if npy_path.is_file():
        if not allow_pickle:
            raise ImportFormatError(
                f"{npy_path} is a pickle: loading it runs code stored in the file. Convert it to "
                "extra_annotations.json, or pass --allow-pickle if you trust where it came from.")
        warnings.warn(f"unpickling {npy_path}: this runs code from the file", stacklevel=2)
        return np.load(npy_path, allow_pickle=True).item()
    raise ImportFormatError(f"{directory}: neither extra_annotations.json nor extra_annotations.npy found.")


def from_long(annotations_file: Path, *, examples_file: Path | None = None, example_col: str = "example_id",
              annotator_col: str = "annotator_id", label_col: str = "label", gold_col: str | None = None,
              examples_id_col: str | None = None, examples_gold_col: str | None = None,
              text_cols: Sequence[str] = ("text",), text_sep: str = " [SEP] ",
              label_names: dict | None = None) -> Replay:
    """One annotation a row; texts (and gold) from ``examples_file`` or the same file."""
    annotations = read_table(annotations_file)
    examples = read_table(examples_file) if examples_file else annotations
    return long_frame(annotations, examples, example_col=example_col, annotator_col=annotator_col,
                      label_col=label_col, gold_col=gold_col, examples_id_col=examples_id_col or example_col,
                      examples_gold_col=examples_gold_col, text_cols=text_cols, text_sep=text_sep,
                      label_names=label_names, source=str(annotations_file),
                      examples_source=str(examples_file or annotations_file))


def long_frame(annotations: pd.DataFrame, examples: pd.DataFrame, *, example_col: str, annotator_col: str,
               label_col: str, gold_col: str | None, examples_id_col: str, examples_gold_col: str | None,
               text_cols: Sequence[str], text_sep: str, label_names: dict | None, source: str,
               examples_source: str) -> Replay:
    _need(annotations, [example_col, annotator_col, label_col, *([gold_col] if gold_col else [])], source)
    _need(examples, [examples_id_col, *text_cols, *([examples_gold_col] if examples_gold_col else [])],
          examples_source)
    pool = pd.DataFrame({"example_id": _ids(annotations[example_col]),
                         "annotator_id": annotations[annotator_col].astype(str).str.strip(),
                         "label": annotations[label_col]})
    items = examples.drop_duplicates(examples_id_col)
    text = items[list(text_cols)].astype(str).agg(text_sep.join, axis=1)
    table = pd.DataFrame({"example_id": _ids(items[examples_id_col]).to_numpy(), "text": text.to_numpy(),
                          "split": "pool", "gold": None})
    if examples_gold_col:
        table["gold"] = items[examples_gold_col].to_numpy()
    if gold_col:
        gold = pd.DataFrame({"example_id": pool["example_id"], "gold": annotations[gold_col].map(normalise_label)})
        per_item = gold.dropna().drop_duplicates()
        clash = per_item["example_id"].duplicated()
        if clash.any():
            raise ImportFormatError(f"{source}: example '{per_item['example_id'][clash].iloc[0]}' has "
                                    f"conflicting values in gold column '{gold_col}'.")
        table["gold"] = table["example_id"].map(per_item.set_index("example_id")["gold"])
    return _finish(table, pd.DataFrame(columns=ANSWERS), pool, label_names, source=source)


def from_wide(file: Path, *, id_col: str = "id", text_col: str = "text", annotator_cols: Sequence[str] | None = None,
              gold_col: str | None = None, label_names: dict | None = None) -> Replay:
    """One column per annotator, empty where they did not label."""
    return wide_frame(read_table(file), id_col=id_col, text_col=text_col, annotator_cols=annotator_cols,
                      gold_col=gold_col, label_names=label_names, source=str(file))


def wide_frame(frame: pd.DataFrame, *, id_col: str, text_col: str, annotator_cols: Sequence[str] | None,
               gold_col: str | None, label_names: dict | None, source: str) -> Replay:
    _need(frame, [id_col, text_col, *([gold_col] if gold_col else [])], source)
    cols = list(annotator_cols) if annotator_cols else [c for c in frame.columns if c not in (id_col, text_col, gold_col)]
    _need(frame, cols, source)
    pool = frame.melt(id_vars=[id_col], value_vars=cols, var_name="annotator_id", value_name="label")
    pool = pool.rename(columns={id_col: "example_id"})
    examples = pd.DataFrame({"example_id": _ids(frame[id_col]), "text": frame[text_col], "split": "pool",
                             "gold": frame[gold_col] if gold_col else None})
    return _finish(examples, pd.DataFrame(columns=ANSWERS), pool, label_names, source=source)


def from_datasets(path_or_name: str | Path, *, split: str = "train", layout: str = "long", **columns) -> Replay:
    """Anything ``datasets.load_dataset`` opens: a local csv/parquet/json(l) file or a hub id (online)."""
    import datasets

    path = Path(path_or_name)
    builders = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json"}
    try:
        if path.suffix in builders:
            extra = {"delimiter": "\t"} if path.suffix == ".tsv" else {}
            data = datasets.load_dataset(builders[path.suffix], data_files=str(path), split=split, **extra)
        else:
            data = datasets.load_dataset(str(path_or_name), split=split)
    except Exception as err:  # datasets raises many types (offline, missing, bad file)
        raise ImportFormatError(f"{path_or_name}: datasets.load_dataset could not open it "
                                f"({type(err).__name__}: {str(err).splitlines()[0][:200]}).") from err
    frame = data.to_pandas()
    if layout == "wide":
        keys = {"id_col", "text_col", "annotator_cols", "gold_col", "label_names"}
        return wide_frame(frame, **{"id_col": "id", "text_col": "text", "annotator_cols": None, "gold_col": None,
                                    "label_names": None, **{k: v for k, v in columns.items() if k in keys}},
                          source=str(path_or_name))
    options = {"example_col": "example_id", "annotator_col": "annotator_id", "label_col": "label",
               "gold_col": None, "examples_gold_col": None, "text_cols": ("text",), "text_sep": " [SEP] ",
               "label_names": None, **columns}
    options.setdefault("examples_id_col", options["example_col"])
    options["examples_id_col"] = options["examples_id_col"] or options["example_col"]
    return long_frame(frame, frame, source=str(path_or_name), examples_source=str(path_or_name), **options)


# ---------------------------------------------------------------- checks and the protocol split

def _finish(examples: pd.DataFrame, initial: pd.DataFrame, pool: pd.DataFrame, label_names: dict | None,
            *, source: str) -> Replay:
    frames = []
    for frame in (initial, pool):
        frame = frame.assign(example_id=_ids(frame["example_id"]) if len(frame) else frame["example_id"],
                             label=frame["label"].map(normalise_label))
        frames.append(frame.dropna(subset=["label"]).loc[:, ANSWERS].reset_index(drop=True))
    initial, pool = (frame.assign(label=_rename(frame["label"], label_names, source)) for frame in frames)
    examples = examples.assign(gold=_rename(examples["gold"].map(normalise_label), label_names, source))
    classes = sorted(set(initial["label"]) | set(pool["label"]) | set(examples["gold"].dropna()))
    if label_names:
        classes = [name for name in dict.fromkeys(label_names.values()) if name in classes]
    replay = Replay(examples.loc[:, list(EXAMPLE_COLUMNS)].reset_index(drop=True), initial, pool, tuple(classes))
    check_replay(replay, source=source)
    return replay


def check_replay(replay: Replay, *, source: str = "replay") -> None:
    """Ids unique, annotations on pool examples only, no (example, annotator) twice, test has gold."""
    examples = replay.examples
    duplicated = examples["example_id"][examples["example_id"].duplicated()]
    if len(duplicated):
        raise ImportFormatError(f"{source}: example id '{duplicated.iloc[0]}' appears more than once.")
    if len(replay.classes) < 2:
        raise ImportFormatError(f"{source}: found {len(replay.classes)} class(es); a classifier needs two.")
    pool_ids = set(examples.loc[examples["split"] == "pool", "example_id"])
    both = pd.concat([replay.initial, replay.pool], ignore_index=True)
    stray = both[~both["example_id"].isin(pool_ids)]
    if len(stray):
        raise ImportFormatError(f"{source}: annotation for example '{stray['example_id'].iloc[0]}', which is not "
                                f"a pool example ({len(stray)} such rows).")
    twice = both[both.duplicated(["example_id", "annotator_id"])]
    if len(twice):
        row = twice.iloc[0]
        raise ImportFormatError(f"{source}: annotator '{row['annotator_id']}' labels example "
                                f"'{row['example_id']}' more than once.")
    test = examples[examples["split"] == "test"]
    if test["gold"].isna().any():
        raise ImportFormatError(f"{source}: test example '{test.loc[test['gold'].isna(), 'example_id'].iloc[0]}' "
                                "has no gold label; a test split needs gold labels.")


def split_for_simulation(replay: Replay, *, seed: int, n_start: int, labels_per_start: int,
                         test_size: float | int | None = None) -> Replay:
    """Hold out a gold test split (if there is none) and draw the starting labels (if none given).

    Test examples lose their annotations. Start examples are drawn among pool examples
    with at least ``labels_per_start`` annotations; ``labels_per_start`` of each one's
    pooled annotations move to ``initial``.
    """
    rng = np.random.default_rng(seed)
    examples, pool, initial = replay.examples, replay.pool, replay.initial
    if test_size and not (examples["split"] == "test").any():
        golden = examples.dropna(subset=["gold"])
        if golden.empty:
            raise ImportFormatError("no gold labels: a test split cannot be held out; give gold or a test file.")
        _, held = train_test_split(golden["example_id"], test_size=test_size, random_state=seed,
                                   stratify=golden["gold"])
        examples = examples.assign(split=np.where(examples["example_id"].isin(set(held)), "test", "pool"))
        pool = pool[~pool["example_id"].isin(set(held))]
    if initial.empty and n_start:
        counts = pool["example_id"].value_counts()
        eligible = np.sort(counts.index[counts >= labels_per_start].to_numpy())
        if len(eligible) < n_start:
            raise ImportFormatError(f"only {len(eligible)} examples have {labels_per_start} annotations; "
                                    f"cannot start with {n_start}.")
        start = set(rng.choice(eligible, size=n_start, replace=False))
        candidates = pool[pool["example_id"].isin(start)]
        order = candidates.assign(key=rng.random(len(candidates))).sort_values(["example_id", "key"])
        chosen = order.groupby("example_id").head(labels_per_start).index
        initial = pool.loc[chosen, ANSWERS].reset_index(drop=True)
        pool = pool.drop(index=chosen)
    replay = Replay(examples.reset_index(drop=True), initial.reset_index(drop=True), pool.reset_index(drop=True),
                    replay.classes)
    check_replay(replay, source="split_for_simulation")
    return replay
