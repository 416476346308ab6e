"""The examples a campaign starts from: a user's file (or DataFrame) read and checked row by row.

The file has ``id`` (``example_id`` is accepted too) and ``text``, optionally ``split``
(``pool`` | ``test``, default pool) and ``gold`` (a class name). Every cell is read as
text: an id ``007``, ``1.0`` or ``NA`` stays what it is. A problem is refused with the file
and line (the row, for a parquet file or a DataFrame) before anything is made: an empty or
repeated id, an empty text, an unknown split, a gold label that is not a class, a missing
column, or a column spelled like one crowdloop reads but not exactly (``ID``, ``Text``),
which would otherwise be ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from crowdloop.tasks import columns
from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.import_values import Origin
from crowdloop.tasks.importers import read_table
from crowdloop.tasks.schema import EXAMPLE_COLUMNS, SPLITS

ID_NAMES = ("id", "example_id")  # the README says `id`; the stored table (and the Python API) say example_id
READ = (*ID_NAMES, "text", "split", "gold")
# other names people give gold labels, refused while there is no gold column (it would be ignored)
ALIASES = {"gold": ("label", "gold_label", "true_label")}


def read_examples_file(path: Path, *, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """The examples in a CSV, TSV, JSONL, JSON or parquet file, checked (see the module's docstring);
    gold labels are checked against ``classes`` when given. CampaignError (or ImportFormatError,
    for a file that cannot be read) names the file and line."""
    frame, origin = read_table(path)
    return examples_frame(frame, origin=origin, classes=classes)


def examples_frame(frame: pd.DataFrame, *, origin: Origin | None = None,
                   classes: Sequence[str] | None = None) -> pd.DataFrame:
    """``frame`` (row i is data row i of ``origin``) as the campaign's examples table: DataFrame of
    shape (N, 4) with schema.EXAMPLE_COLUMNS, ids and texts as str, split defaulting to pool and
    gold to None; checked by :func:`check_examples`."""
    origin = origin or Origin("examples")
    found = [str(c) for c in frame.columns]
    header = f"{origin.name}:1" if origin.path is not None else origin.name
    if why := columns.one_column_header(found):
        raise CampaignError(f"{header}: {why}.")
    near = columns.misnamed(found, READ, aliases=ALIASES)
    if near:
        raise CampaignError(f"{header}: column '{near[0]}' is not one crowdloop reads; did you mean {near[1]}? "
                            f"Rename it (found: {', '.join(found)}).")
    if all(name in found for name in ID_NAMES):
        raise CampaignError(f"{header}: both 'id' and 'example_id' columns; keep one, the example ids.")
    for column, names in (("id", ID_NAMES), ("text", ("text",))):
        if not any(name in found for name in names):
            raise CampaignError(f"{header}: missing column '{column}' (found: {', '.join(found) or 'none'}); "
                                "the examples need the columns id and text (optional split and gold).")
    rows = frame.reset_index(drop=True)
    for column in (c for c in READ if c in rows):
        nested = rows[column].map(lambda value: isinstance(value, (list, dict)))
        if nested.any():
            value = rows.at[rows.index[nested][0], column]
            raise CampaignError(f"{origin.at(rows.index[nested][0])}: column '{column}' holds "
                                f"{type(value).__name__} {value!r}; write text or a number.")
    rows = rows.rename(columns={"id": "example_id"})
    cells = {c: rows[c].map(_text).str.strip() for c in ("split", "gold") if c in rows}
    table = pd.DataFrame({
        "example_id": rows["example_id"].map(_text).str.strip(),
        "text": rows["text"].map(_text),
        "split": cells["split"].where(cells["split"] != "", "pool") if "split" in cells else "pool",
        "gold": cells["gold"].astype(object).where(cells["gold"] != "", None) if "gold" in cells else None,
    }, index=rows.index).loc[:, list(EXAMPLE_COLUMNS)]
    check_examples(table, origin=origin, classes=classes)
    return table


def check_examples(examples: pd.DataFrame, *, origin: Origin, classes: Sequence[str] | None = None) -> None:
    """Fail with CampaignError at the first bad row of ``examples`` (schema.EXAMPLE_COLUMNS, row i
    at ``origin.at(i)``): an empty or repeated id, an empty text, an unknown split, a gold label
    outside ``classes`` (when given)."""
    rows = examples.reset_index(drop=True)
    ids = rows["example_id"].map(_text).str.strip()
    texts = rows["text"].map(_text)
    for row in rows.index[(ids == "") | (texts.str.strip() == "")]:
        if ids[row] == "":
            raise CampaignError(f"{origin.at(row)}: empty id; give every example an id, or remove the row.")
        raise CampaignError(f"{origin.at(row)}: example '{ids[row]}' has an empty text; fill it in, "
                            "or remove the row.")
    repeated = ids.duplicated()
    if repeated.any():
        row = rows.index[repeated][0]
        first = rows.index[ids == ids[row]][0]
        raise CampaignError(f"{origin.at(row)}: example id '{ids[row]}' appears more than once (first on "
                            f"{_line(origin, first)}); ids must be unique.")
    odd = ~rows["split"].isin(SPLITS)
    if odd.any():
        row = rows.index[odd][0]
        raise CampaignError(f"{origin.at(row)}: unknown split '{rows.at[row, 'split']}'; use "
                            f"{' or '.join(SPLITS)}.")
    if classes is not None:
        outside = rows["gold"].notna() & ~rows["gold"].isin(list(classes))
        if outside.any():
            row = rows.index[outside][0]
            raise CampaignError(f"{origin.at(row)}: gold label '{rows.at[row, 'gold']}' is not among the classes "
                                f"{', '.join(classes)}.")


def _line(origin: Origin, row: int) -> str:
    """Where data row ``row`` is, without the file's name: ``line 4`` (``row 3`` where lines are not counted)."""
    at = origin.at(row)[len(origin.name):]
    return f"line {at[1:]}" if at.startswith(":") else at.removeprefix(", ")


def _text(value) -> str:
    """A cell as text ('' when empty); numbers as written (``1.0`` stays ``1.0``)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value)
