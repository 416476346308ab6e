"""Label Studio's documented formats, both ways: a round's batch as tasks and a labeling config,
and an export of annotations (JSON, CSV or TSV) as answer rows.

Pure: data in, text out (no SDK, no server). Out: one task per request of the batch,
``data`` = ``text``, ``example_id``, ``suggested_annotator`` (routing's choice, shown above
the text; Label Studio Community cannot assign tasks) and ``round``; a re-label request is a
task like any other, since Label Studio keeps several annotations per task. In: a JSON export
(a list of tasks with ``annotations[].result[].value.choices``, ``completed_by`` and
``was_cancelled``) becomes the rows :mod:`crowdloop.tasks.ingest` checks and stores, one per
annotation: skipped (``was_cancelled``) and empty ones are marked, not answered, and a task
without annotations is an unanswered row. Every problem names the file and the task id. A CSV
or TSV export (one row per annotation) is read by :mod:`crowdloop.tasks.ingest` row by row, each
row through :func:`csv_answer`; its problems name the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import pandas as pd

from crowdloop.tasks.config import LabelStudioConfig
from crowdloop.tasks.errors import IngestError
from crowdloop.tasks.files import people_csv

TASK_KEYS = ("text", "example_id", "suggested_annotator", "round")  # a task's data
CHOICES = "label"  # the <Choices> control's name: the key of its result
SKIPPED, EMPTY = "skipped", "empty"  # a row's status when its annotation gives no class
CSV_EXPORT = ("annotator", "annotation_id", "lead_time")  # columns every Label Studio CSV or TSV export has


def label_config(classes: Sequence[str]) -> str:
    """The labeling config: the text, who routing suggests, one choice per class in order."""
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return ('<View>\n  <Header value="Suggested annotator: $suggested_annotator" size="6"/>\n'
            '  <Text name="text" value="$text"/>\n'
            f'  <Choices name="{CHOICES}" toName="text" choice="single-radio" showInline="true">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def config_classes(config: str) -> list[str] | None:
    """The choices of a labeling config's ``<Choices name="label">``, in order (None: it has none)."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError:
        return None
    control = next((c for c in root.iter("Choices") if c.get("name") == CHOICES), None)
    return None if control is None else [choice.get("value") for choice in control.iter("Choice")]


def task_key(data: dict) -> tuple[str, str]:
    """What makes a task one request: its example and round (a re-label request is another round)."""
    return str(data.get("example_id", "")), str(data.get("round", ""))


def batch_tasks(batch: pd.DataFrame, *, round: int) -> list[dict]:
    """One task per request of ``batch`` (schema.BATCH_COLUMNS), in batch order."""
    suggested = batch["suggested_annotator"].fillna("").astype(str)
    return [{"data": dict(zip(TASK_KEYS, (str(text), str(example), who, int(round))))}
            for text, example, who in zip(batch["text"], batch["example_id"].astype(str), suggested)]


def task_files(tasks: list[dict], classes: Sequence[str], *, form: str) -> dict[str, str]:
    """File name -> text: the tasks as ``form`` (json: to import; csv: to import, or open in a
    spreadsheet; jsonl: for a cloud storage folder) and the labeling config."""
    rows = [task["data"] for task in tasks]
    texts = {"json": lambda: json.dumps(tasks, indent=2, ensure_ascii=False) + "\n",
             "jsonl": lambda: "".join(json.dumps(task, ensure_ascii=False) + "\n" for task in tasks),
             "csv": lambda: people_csv(pd.DataFrame(rows, columns=list(TASK_KEYS)))}
    return {f"tasks.{form}": texts[form](), "label_config.xml": label_config(classes)}


def read_export(path: Path, text: str, *, rule: LabelStudioConfig) -> list[tuple]:
    """The rows of a Label Studio JSON export: ``(example_id, annotator_id, label, line, task,
    status)``, one per annotation (one per task without any), in file order.

    ``line`` is 0 (the ``task`` id locates a row); ``status`` is ``skipped`` or ``empty``
    for an annotation that gives no class, else ''. ``rule`` says how ``completed_by``
    becomes an annotator id (``labelstudio.annotator_id``).
    """
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as err:
        raise IngestError(f"{path}:{err.lineno}: not valid JSON ({err.msg}, column {err.colno}); "
                          "export the project from Label Studio again as JSON.") from None
    if not isinstance(tasks, list):
        raise IngestError(f"{path}: not a Label Studio JSON export (expected a list of tasks, got "
                          f"{type(tasks).__name__}); export the project as JSON.")
    rows = []
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise IngestError(f"{path}: task #{number} is not a Label Studio task (no 'data' object); "
                              "export the project as JSON, not JSON-MIN or CSV.")
        where = f"{path}: task {task.get('id', '#' + str(number))}"
        example = task["data"].get("example_id")
        if example is None or isinstance(example, (dict, list, bool)):
            raise IngestError(f"{where}: no data.example_id; import the tasks `crowdloop export "
                              "--format label-studio` writes, which carry it.")
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            raise IngestError(f"{where}: 'annotations' must be a list.")
        tag = str(task.get("id", f"#{number}"))
        if not annotations:
            rows.append((str(example).strip(), "", "", 0, tag, ""))
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise IngestError(f"{where}: an annotation is not a JSON object.")
            label, status = _choice(annotation, where)
            rows.append((str(example).strip(), annotator_id(annotation.get("completed_by"), rule, where=where),
                         label, 0, tag, status))
    return rows


def _choice(annotation: dict, where: str) -> tuple[str, str]:
    """(class name, '') for an annotation that chose one; ('', skipped|empty) otherwise."""
    if annotation.get("was_cancelled"):
        return "", SKIPPED
    result = annotation.get("result") or []
    if not isinstance(result, list):
        raise IngestError(f"{where}: an annotation's 'result' must be a list.")
    return _one_class([c for region in result if _is_choices(region) for c in _region_choices(region, where)], where)


def _one_class(chosen: list, where: str) -> tuple[str, str]:
    """(class name, '') for an annotation's one choice, ('', empty) for none; several are refused."""
    if len(chosen) > 1:
        raise IngestError(f"{where}: an annotation chooses {len(chosen)} classes ({', '.join(map(str, chosen))}); "
                          "each annotation must choose one (choice=\"single-radio\" in the labeling config).")
    return (str(chosen[0]).strip(), "") if chosen else ("", EMPTY)


def _is_choices(region) -> bool:
    """A choices result: typed so, or (written by hand or another tool) untyped with a value.choices."""
    if not isinstance(region, dict):
        return False
    kind = region.get("type")
    return kind == "choices" or (kind is None and isinstance(region.get("value"), dict)
                                 and "choices" in region["value"])


def _region_choices(region: dict, where: str) -> list:
    """The ``value.choices`` list of a choices result (a malformed one is refused, not read as text)."""
    value = region.get("value") or {}
    choices = (value.get("choices") or []) if isinstance(value, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise IngestError(f"{where}: a choices result's value is not {{\"choices\": [...]}} (got "
                          f"{json.dumps(region.get('value'))[:60]}); export the project from Label Studio again as JSON.")
    return choices


def annotator_id(completed_by, rule: LabelStudioConfig, *, where: str) -> str:
    """The annotator id of an annotation's ``completed_by`` (a user number, or the
    ``{"id", "email", ...}`` object of an export with user details)."""
    user = completed_by.get("id") if isinstance(completed_by, dict) else completed_by
    email = completed_by.get("email") if isinstance(completed_by, dict) else None
    if user is None or isinstance(user, (dict, list, bool)):
        raise IngestError(f"{where}: an annotation has no completed_by user; export the project from "
                          "Label Studio again.")
    return _named(str(user), email or None, rule, where=where)


def is_csv_export(path: Path, header: Sequence[str]) -> bool:
    """Whether a CSV or TSV header is a Label Studio export's: one row per annotation (skipped
    ones left out), a task without annotations once, with an empty ``annotator``. Raises
    :class:`IngestError` for an export of tasks crowdloop did not write (no ``example_id``)."""
    if not set(CSV_EXPORT) <= set(header):
        return False
    if "example_id" not in header:
        raise IngestError(f"{path}:1: a Label Studio export without an example_id column; label the tasks "
                          "`crowdloop export --format label-studio` writes (their data carries it).")
    return True


def csv_answer(cells: dict, rule: LabelStudioConfig, *, where: str) -> tuple[str, str, str, str]:
    """``(example_id, annotator_id, label, status)`` of one row of a Label Studio CSV or TSV
    export (``cells``: its example_id, annotator and label). ``annotator`` is the user's number
    (their email in an export with user details), '' for a task without annotations; ``label``
    is the chosen class, JSON when an annotation chose several, '' when it chose none."""
    example, annotator, label = (cells.get(key, "") for key in ("example_id", "annotator", CHOICES))
    if not annotator:
        return example, "", "", ""
    chosen = _cell_choices(label)
    label, status = (label, "" if label else EMPTY) if chosen is None else _one_class(chosen, where)
    email = "@" in annotator
    return example, _named(None if email else annotator, annotator if email else None, rule, where=where), label, status


def _cell_choices(label: str) -> list | None:
    """The classes of an export cell that holds JSON (``{"choices": [...]}``: an annotation that chose
    several); None for a plain class name."""
    if not label.startswith(("{", "[")):
        return None
    try:
        value = json.loads(label)
    except json.JSONDecodeError:
        return None
    items = value if isinstance(value, list) else [value]
    return [c for item in items for c in (item.get("choices") or [] if isinstance(item, dict) else [item])]


def _named(user: str | None, email: str | None, rule: LabelStudioConfig, *, where: str) -> str:
    """The annotator id ``labelstudio.annotator_id`` gives a Label Studio user known by number, email or both."""
    if rule.annotator_id == "user_id":
        if user is None:
            raise IngestError(f"{where}: the annotator is {email}, an email without a user number, and "
                              "labelstudio.annotator_id is user_id; set it to table and map each email to the user number stored "
                              "so far (email would file their answers under new ids).")
        return user
    if rule.annotator_id == "email":
        if not email:
            raise IngestError(f"{where}: the annotator is user {user} without an email, and labelstudio.annotator_id "
                              "is email; fetch the export with `crowdloop labelstudio pull` (it carries the "
                              "emails), or set labelstudio.annotator_id to table and map each user number to "
                              "the email stored so far (user_id would file their answers under new ids).")
        return str(email)
    for key in (user, email):
        if key is not None and key in rule.annotators:
            return rule.annotators[key]
    shown = f"{user} ({email})" if user and email else user or email
    raise IngestError(f"{where}: user {shown} is not in labelstudio.annotators; add them to that table in params.yaml.")
