"""The Learning-With-Disagreements shared tasks' JSON format (``--format lewidi``) as a :class:`Replay`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crowdloop.tasks.import_formats import ANSWERS, Replay, assemble
from crowdloop.tasks.import_values import ImportFormatError, Origin, labels, read_json
from crowdloop.tasks.schema import TEXT_SEP


def from_lewidi(source: Path | str, *, label_names: dict | None = None) -> Replay:
    """The Le-Wi-Di JSON format: ``{item_id: {"text", "annotators": "Ann1,Ann2", "annotations": "0,1",
    "hard_label", ...}}``, one file or a folder of them.

    A file whose name ends in ``_test`` is the gold test split (gold = ``hard_label``;
    its annotations are not used); the others are the pool, every annotation
    uncollected, with ``hard_label`` (the annotators' majority) as pool gold. With
    several files, ids are prefixed by the file's split (``train-1``, ``dev-1``). A text
    that is a mapping (a conversation) is its values joined with " [SEP] ".
    """
    source = Path(source)
    files = sorted(source.glob("*.json")) if source.is_dir() else [source]
    if not files or not all(f.is_file() for f in files):
        raise ImportFormatError(f"{source}: no Le-Wi-Di JSON file there (expected *_train.json, *_dev.json, "
                                "*_test.json or one .json file).")
    examples, answers = [], []
    for path in files:
        split_name = path.stem.rsplit("_", 1)[-1].lower() if "_" in path.stem else path.stem
        items = _lewidi_items(path)
        for item_id, item in items.items():
            example_id = f"{split_name}-{item_id}" if len(files) > 1 else str(item_id)
            text, gold, pairs = _lewidi_item(path, item_id, item)
            test = split_name == "test"
            examples.append((example_id, text, "test" if test else "pool", gold))
            if not test:
                answers += [(example_id, annotator, label) for annotator, label in pairs]
    table = pd.DataFrame(examples, columns=["example_id", "text", "split", "gold"])
    frame = pd.DataFrame(answers, columns=ANSWERS)
    origin = Origin(str(source))
    table["gold"] = labels(table["gold"], label_names, origin, "hard_label")
    frame["label"] = labels(frame["label"], label_names, origin, "annotations")
    return assemble(table, pd.DataFrame(columns=ANSWERS), frame, origin=origin, label_names=label_names)


def _lewidi_items(path: Path) -> dict:
    items = read_json(path)
    if not isinstance(items, dict):
        raise ImportFormatError(f"{path}: expected a JSON object keyed by item id.")
    return items


def _lewidi_item(path: Path, item_id: str, item) -> tuple[str, str | None, list[tuple[str, str]]]:
    """(text, gold, [(annotator, label), ...]) of one Le-Wi-Di item."""
    where = f"{path} (item '{item_id}')"
    if not isinstance(item, dict) or "text" not in item or "annotations" not in item or "annotators" not in item:
        raise ImportFormatError(f"{where}: an item needs text, annotators and annotations.")
    text = item["text"]
    if isinstance(text, dict):
        text = TEXT_SEP.join(str(v) for v in text.values())
    split = (lambda v: [x.strip() for x in v.split(",")] if isinstance(v, str) else [str(x) for x in v])
    annotators, given = split(item["annotators"]), split(item["annotations"])
    if len(annotators) != len(given):
        raise ImportFormatError(f"{where}: {len(annotators)} annotators but {len(given)} annotations.")
    pairs = [(a, g) for a, g in zip(annotators, given) if g not in ("", "nan", "None")]
    gold = item.get("hard_label")
    return str(text), None if gold is None else str(gold), pairs
