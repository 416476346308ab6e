"""Label Studio's formats: a batch goes out as tasks + labeling config, an export comes back
through the one ingest path (every rule of ingestion holds, with file and task id)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from crowdloop import api
from crowdloop.cli import main
from crowdloop.tasks import config, ingest, labelstudio_format, store
from crowdloop.tasks.errors import IngestError

CLASSES = ("billing", "technical", "shipping")
RULE = config.load().labelstudio  # the template's: annotator id = Label Studio user number


def _campaign(tmp_path, n=24):
    """A campaign folder with n pool examples, 2 gold ones, params.yaml and one annotation."""
    camp = store.Campaign(tmp_path / "camp")
    ids = [f"ex{i:02d}" for i in range(n)]
    examples = pd.DataFrame({"example_id": [*ids, "g1", "g2"], "text": [f"text {i}" for i in range(n + 2)],
                             "split": ["pool"] * n + ["test"] * 2, "gold": [None] * n + ["billing", "shipping"]})
    store.write_examples(camp, examples)
    store.write_params(camp, config.template_text().replace("classes: [billing, technical, shipping, account]",
                                                            "classes: [billing, technical, shipping]"))
    store.append_annotations(camp, pd.DataFrame({"example_id": ["ex00"], "annotator_id": ["1"],
                                                 "label": ["billing"]}), round=0, source="initial")
    return camp, ids


def _batch(ids, *, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"example_id": ids, "text": [f"text {i}" for i in range(len(ids))],
                         "suggested_annotator": [f"{rng.integers(1, 4)}" for _ in ids],
                         "score": rng.random(len(ids)), "cost": 1.0, "label": None})


def _annotation(number, user, choice=None, *, cancelled=False, email=True):
    """One annotation as Label Studio's JSON export writes it."""
    result = [] if choice is None else [{"id": f"r{number}", "type": "choices", "from_name": "label",
                                         "to_name": "text", "origin": "manual", "value": {"choices": [choice]}}]
    completed_by = {"id": user, "email": f"user{user}@example.org", "first_name": "", "last_name": ""} \
        if email else user
    return {"id": number, "completed_by": completed_by, "result": result, "was_cancelled": cancelled,
            "ground_truth": False, "lead_time": 2.5, "task": None}


def _export(tasks, answers):
    """Tasks (from labelstudio_format.batch_tasks) with ids and the given annotations per task."""
    out = []
    for number, (task, given) in enumerate(zip(tasks, answers), start=1):
        for a in given:
            a["task"] = number
        out.append({"id": 100 + number, "data": task["data"], "annotations": given, "predictions": [],
                    "meta": {}, "created_at": "2026-12-01T10:00:00Z", "project": 3})
    return out


def _write(tmp_path, name, export):
    path = tmp_path / name
    path.write_text(json.dumps(export, indent=2))
    return path


def test_a_label_studio_export_of_a_generated_batch_is_ingested_once_with_every_annotator_and_class(tmp_path):
    camp, ids = _campaign(tmp_path)
    tasks = labelstudio_format.batch_tasks(_batch(ids[:20]), round=1)
    rng = np.random.default_rng(1)
    answers, expected = [], []
    for i, task in enumerate(tasks):
        example = task["data"]["example_id"]
        if i % 7 == 3:
            answers.append([_annotation(i * 10, 2, cancelled=True)])       # skipped
        elif i % 7 == 5:
            answers.append([_annotation(i * 10, 3)])                       # submitted without a choice
        elif i % 7 == 6:
            answers.append([])                                             # nobody has labeled it yet
        else:
            # several annotations on one task, by users given as an object or as a bare number
            users = [1, 2] if i % 2 else [3]
            chosen = [CLASSES[rng.integers(len(CLASSES))] for _ in users]
            answers.append([_annotation(i * 10 + k, u, c, email=bool(k)) for k, (u, c) in enumerate(zip(users, chosen))])
            expected += [(example, str(u), c) for u, c in zip(users, chosen)]
    path = _write(tmp_path, "project-3-at-2026-12-01.json", _export(tasks, answers))

    first = ingest.ingest_file(camp, path, classes=CLASSES, on_change="reject", labelstudio=RULE)
    assert sorted(map(tuple, first.new.values.tolist())) == sorted(expected)
    assert first.skipped == 3 and first.empty == 3 and first.unanswered == 2
    stored = store.read_annotations(camp)
    assert sorted(map(tuple, stored.loc[stored["round"] == 0, ["example_id", "annotator_id", "label"]]
                      .iloc[1:].values.tolist())) == sorted(expected)
    assert set(stored["source"].iloc[1:]) == {f"ingest:{path.name}"}

    again = ingest.ingest_file(camp, path, classes=CLASSES, on_change="reject", labelstudio=RULE)
    assert len(again.new) == 0 and again.part is None and again.already_stored == len(expected)
    assert len(store.read_annotations(camp)) == len(stored)


@pytest.mark.parametrize("rule, annotators", [
    (dataclasses.replace(RULE, annotator_id="email"), ["user1@example.org", "user2@example.org"]),
    (dataclasses.replace(RULE, annotator_id="table", annotators={"1": "alice", "user2@example.org": "bob"}),
     ["alice", "bob"]),
])
def test_completed_by_becomes_the_annotator_id_the_rule_names(tmp_path, rule, annotators):
    camp, ids = _campaign(tmp_path)
    tasks = labelstudio_format.batch_tasks(_batch(ids[1:2]), round=1)
    path = _write(tmp_path, "e.json", _export(tasks, [[_annotation(1, 1, "billing"), _annotation(2, 2, "shipping")]]))
    result = ingest.ingest_file(camp, path, classes=CLASSES, on_change="reject", labelstudio=rule)
    assert result.new["annotator_id"].tolist() == annotators


def test_a_bare_user_number_has_no_email_and_the_error_says_how_to_get_one(tmp_path):
    camp, ids = _campaign(tmp_path)
    tasks = labelstudio_format.batch_tasks(_batch(ids[1:2]), round=1)
    path = _write(tmp_path, "e.json", _export(tasks, [[_annotation(1, 4, "billing", email=False)]]))
    with pytest.raises(IngestError, match=rf"^{path}: task 101: the annotator is user 4 without an email.*pull"):
        ingest.ingest_file(camp, path, classes=CLASSES, on_change="reject", labelstudio=dataclasses.replace(RULE, annotator_id="email"))


def test_a_result_without_a_type_that_holds_choices_is_read_as_the_choice(tmp_path):
    """Exports written by hand or by other tools may leave out "type": the choice is not lost as empty,
    and a region of another kind beside it (a comment) is still not read as one."""
    camp, ids = _campaign(tmp_path)
    tasks = labelstudio_format.batch_tasks(_batch(ids[1:3]), round=1)
    untyped, commented = _annotation(1, 1, "billing"), _annotation(2, 2, "shipping")
    del untyped["result"][0]["type"]
    commented["result"].append({"from_name": "note", "to_name": "text", "value": {"text": ["sure"]}})
    path = _write(tmp_path, "e.json", _export(tasks, [[untyped], [commented]]))
    result = ingest.ingest_file(camp, path, classes=CLASSES, on_change="reject", labelstudio=RULE)
    assert result.new.values.tolist() == [["ex01", "1", "billing"], ["ex02", "2", "shipping"]]
    assert result.empty == 0


@pytest.mark.parametrize("change, message", [
    (lambda t: t[1]["annotations"][0]["result"][0]["value"].update(choices=["Billing"]),
     "task 102: label 'Billing' is not a class (did you mean 'billing'?)"),
    (lambda t: t[0]["data"].update(example_id="nope"), "task 101: unknown example id 'nope'"),
    (lambda t: t[0]["data"].update(example_id="g1"), "task 101: example 'g1' belongs to the gold test split"),
    (lambda t: t[1]["data"].pop("example_id"), "task 102: no data.example_id"),
    (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(choices=["billing", "shipping"]),
     "task 101: an annotation chooses 2 classes"),
    (lambda t: t[0]["annotations"][0].update(completed_by=None), "task 101: an annotation has no completed_by"),
    (lambda t: t[0]["annotations"][0]["result"][0].update(value=["billing"]),
     "task 101: a choices result's value is not {\"choices\": [...]} (got [\"billing\"])"),
    (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(choices="billing"),
     "task 101: a choices result's value is not {\"choices\": [...]} (got {\"choices\": \"billing\"})"),
    (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(choices=[["billing"]]),
     "task 101: a choices result's value is not"),
    (lambda t: t[1]["annotations"][0]["result"][0]["value"].update(choices=["technical"]),
     "task 102: annotator '1' gave example 'ex01' the label 'billing' in task 101 but this row says 'technical'"),
])
def test_a_bad_export_names_file_and_task_and_stores_nothing(tmp_path, change, message):
    camp, ids = _campaign(tmp_path)
    tasks = labelstudio_format.batch_tasks(_batch(["ex01", "ex01", "ex02"]), round=1)
    export = _export(tasks, [[_annotation(1, 1, "billing")], [_annotation(2, 1, "billing")],
                             [_annotation(3, 2, "shipping")]])
    change(export)
    path = _write(tmp_path, "bad.json", export)
    before = store.data_hash(camp)
    with pytest.raises(IngestError) as err:
        ingest.ingest_file(camp, path, classes=CLASSES, on_change="reject", labelstudio=RULE)
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)
    assert store.data_hash(camp) == before


def test_a_changed_answer_and_a_malformed_file_are_refused(tmp_path):
    camp, _ = _campaign(tmp_path)
    tasks = labelstudio_format.batch_tasks(_batch(["ex00"]), round=1)
    changed = _write(tmp_path, "changed.json", _export(tasks, [[_annotation(1, 1, "technical")]]))
    with pytest.raises(IngestError, match=r"task 101: annotator '1' gave example 'ex00' the label 'billing' in round 0"):
        ingest.ingest_file(camp, changed, classes=CLASSES, on_change="reject", labelstudio=RULE)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1, "data": {}\n')
    with pytest.raises(IngestError, match=rf"^{broken}:2: not valid JSON"):
        ingest.read_answer_file(broken, labelstudio=RULE)
    with pytest.raises(IngestError, match="not a Label Studio JSON export"):
        ingest.read_answer_file(_write(tmp_path, "obj.json", {"tasks": []}), labelstudio=RULE)


def test_the_export_has_one_task_per_request_and_the_classes_in_order(tmp_path):
    batch = _batch(["ex03", "ex04", "ex03"])  # ex03 asked twice (two annotators): two tasks
    batch.loc[1, "suggested_annotator"] = None
    tasks = labelstudio_format.batch_tasks(batch, round=4)
    assert [t["data"]["example_id"] for t in tasks] == ["ex03", "ex04", "ex03"]
    assert tasks[1]["data"] == {"text": "text 1", "example_id": "ex04", "suggested_annotator": "", "round": 4}
    files = labelstudio_format.task_files(tasks, ["b & c", "a", "<z>"], form="json")
    assert labelstudio_format.config_classes(files["label_config.xml"]) == ["b & c", "a", "<z>"]
    assert json.loads(files["tasks.json"]) == tasks
    jsonl = labelstudio_format.task_files(tasks, CLASSES, form="jsonl")["tasks.jsonl"]
    assert [json.loads(line) for line in jsonl.splitlines()] == tasks
    assert labelstudio_format.task_key(tasks[0]["data"]) == ("ex03", "4")


def test_crowdloop_export_writes_the_last_batch_in_each_form(tmp_path, capsys):
    camp, ids = _campaign(tmp_path)
    batch = _batch(ids[:5]).assign(text=["=HYPERLINK(\"x\")", "plain", "+1", "-2", "@SUM(A1)"])
    store.write_round(camp, 1, batch=batch, consensus=pd.DataFrame({"label": []}, index=pd.Index([], name="example_id")),
                      annotators=pd.DataFrame({"annotator_id": []}), metrics={"batch_size": 5},
                      pred_probs=pd.DataFrame(index=pd.Index([], name="example_id")))
    assert main(["-C", str(camp.root), "export", "--format", "label-studio-csv"]) == 0
    folder = camp.root / "exports" / "round-001"
    assert "5 tasks in" in capsys.readouterr().out
    cells = pd.read_csv(folder / "tasks.csv", dtype=str)["text"].tolist()
    assert cells == ["'=HYPERLINK(\"x\")", "plain", "'+1", "'-2", "'@SUM(A1)"]  # shown as text by a spreadsheet
    done = api.export(camp, format="label-studio")
    assert [p.name for p in done.files] == ["tasks.json", "label_config.xml"] and done.round == 1
    assert [t["data"]["text"] for t in json.loads((folder / "tasks.json").read_text())] == batch["text"].tolist()
    assert main(["-C", str(camp.root), "export", "--round", "7"]) == 2
    assert "there is no round 7" in capsys.readouterr().err


def test_an_html_error_page_is_one_line_and_an_api_suffix_is_named():
    from label_studio_sdk.core.api_error import ApiError

    from crowdloop.tasks import labelstudio_client as client

    server = client.Server({client.URL_ENV: "http://127.0.0.1:9/api", client.KEY_ENV: "token-0123456789"})
    page = "<!doctype html>\n<html lang='en'>\n<head><title>Not Found</title></head>\n<body><h1>404</h1></body></html>"
    with pytest.raises(client.LabelStudioError) as err:
        with server.talking():
            raise ApiError(status_code=404, body=page)
    message = str(err.value)
    assert "\n" not in message and "<html" not in message
    assert "answered 404 (an HTML page: Not Found); LABEL_STUDIO_URL is the server's address, without /api: " \
           "http://127.0.0.1:9." in message


def test_talking_to_label_studio_fails_with_what_to_do(tmp_path, monkeypatch):
    from crowdloop.tasks import labelstudio_client as client

    with pytest.raises(client.LabelStudioError, match="LABEL_STUDIO_URL is not set"):
        client.Server({})
    with pytest.raises(client.LabelStudioError, match="LABEL_STUDIO_API_KEY is not set; .*Personal Access Token"):
        client.Server({client.URL_ENV: "http://127.0.0.1:9"})
    token = "legacy-token-0123456789"
    server = client.Server({client.URL_ENV: "http://127.0.0.1:9", client.KEY_ENV: token})  # nothing listens there
    with pytest.raises(client.LabelStudioError, match=r"cannot reach Label Studio at LABEL_STUDIO_URL=http://127.0.0.1:9") \
            as err:
        server.push("p", [], classes=CLASSES)
    assert token not in str(err.value)
    camp, _ = _campaign(tmp_path)
    store.write_round(camp, 1, batch=_batch(["ex01"]), annotators=pd.DataFrame({"annotator_id": []}),
                      consensus=pd.DataFrame({"label": []}, index=pd.Index([], name="example_id")),
                      metrics={"batch_size": 1}, pred_probs=pd.DataFrame(index=pd.Index([], name="example_id")))
    with pytest.raises(config.ConfigError, match="'labelstudio.project' is null"):
        api.labelstudio_push(camp)


@pytest.mark.parametrize("section, message", [
    ({"annotator_id": "name"}, "'labelstudio.annotator_id' must be one of user_id, email, table"),
    ({"annotator_id": "table"}, "'labelstudio.annotators' needs"),
    ({"project": " "}, "'labelstudio.project' must be null, a title or a number"),
    ({"project": [1]}, "'labelstudio.project' must be str or int"),
])
def test_the_labelstudio_section_is_checked(section, message):
    raw = config.load().to_dict()
    raw["labelstudio"].update(section)
    with pytest.raises(config.ConfigError, match=message):
        config.from_dict(raw)


# A Label Studio CSV or TSV export. EXPORT is written by Label Studio 1.23.2's own converter
# (label_studio_sdk 2.1.2, ``Converter.convert(..., "CSV")`` and ``"TSV"``) from the JSON export in
# JSON_EXPORT: one row per annotation, newest first, cancelled ones left out, a task without
# annotations once with an empty annotator, users by number. Label Studio names its TSV file *.csv too.
EXPORT = '''"annotation_id","annotator","created_at","example_id","id","label","lead_time","round","suggested_annotator","text","updated_at"
2,"2","2026-12-07T10:02:00Z","ex01",101,"shipping",2.5,1,"1","text 1","2026-12-07T10:02:00Z"
1,"1","2026-12-07T10:01:00Z","ex01",101,"billing",2.5,1,"1","text 1","2026-12-07T10:01:00Z"
3,"1","2026-12-07T10:03:00Z","ex02",102,"technical",2.5,1,"2","text 2, ""quoted""","2026-12-07T10:03:00Z"
"","","","ex03",103,"","",1,"3","text 3",""
5,"3","2026-12-07T10:05:00Z","ex04",104,"",2.5,1,"","text 4","2026-12-07T10:05:00Z"
6,"2","2026-12-07T10:06:00Z","ex05",105,"billing",2.5,1,"2","text 5","2026-12-07T10:06:00Z"
'''
TSV_EXPORT = '"annotation_id"\t"annotator"\t"created_at"\t"example_id"\t"id"\t"label"\t"lead_time"\t"round"\t"suggested_annotator"\t"text"\t"updated_at"\n2\t"2"\t"2026-12-07T10:02:00Z"\t"ex01"\t101\t"shipping"\t2.5\t1\t"1"\t"text 1"\t"2026-12-07T10:02:00Z"\n1\t"1"\t"2026-12-07T10:01:00Z"\t"ex01"\t101\t"billing"\t2.5\t1\t"1"\t"text 1"\t"2026-12-07T10:01:00Z"\n3\t"1"\t"2026-12-07T10:03:00Z"\t"ex02"\t102\t"technical"\t2.5\t1\t"2"\t"text 2, ""quoted"""\t"2026-12-07T10:03:00Z"\n""\t""\t""\t"ex03"\t103\t""\t""\t1\t"3"\t"text 3"\t""\n5\t"3"\t"2026-12-07T10:05:00Z"\t"ex04"\t104\t""\t2.5\t1\t""\t"text 4"\t"2026-12-07T10:05:00Z"\n6\t"2"\t"2026-12-07T10:06:00Z"\t"ex05"\t105\t"billing"\t2.5\t1\t"2"\t"text 5"\t"2026-12-07T10:06:00Z"\n'
ANSWERS = [("ex01", "2", "shipping"), ("ex01", "1", "billing"), ("ex02", "1", "technical"), ("ex05", "2", "billing")]


def _ls_annotation(number, user, choice=None, *, cancelled=False):
    result = [] if choice is None else [{"id": f"r{number}", "from_name": "label", "to_name": "text",
                                         "type": "choices", "origin": "manual", "value": {"choices": [choice]}}]
    return {"id": number, "completed_by": user, "result": result, "was_cancelled": cancelled, "lead_time": 2.5}


def _task(number, example, annotations):
    return {"id": number, "data": {"text": f"text {number - 100}", "example_id": example, "round": 1},
            "annotations": annotations}


JSON_EXPORT = [_task(101, "ex01", [_ls_annotation(1, 1, "billing"), _ls_annotation(2, 2, "shipping")]),
               _task(102, "ex02", [_ls_annotation(3, 1, "technical"), _ls_annotation(4, 2, cancelled=True)]),
               _task(103, "ex03", []), _task(104, "ex04", [_ls_annotation(5, 3)]),
               _task(105, "ex05", [_ls_annotation(6, 2, "billing")])]


def _write_export(tmp_path, text, name="project-3-at-2026-12-07-10-06-4f2a.csv"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", "\r\n").encode())  # as Label Studio writes it
    return path


def _ingest_export(camp, path, rule=RULE):
    return ingest.ingest_file(camp, path, classes=CLASSES, on_change="reject", labelstudio=rule)


@pytest.mark.parametrize("separator", [",", "\t"])
def test_a_csv_or_tsv_export_stores_what_the_json_export_stores_and_nothing_twice(tmp_path, separator):
    camp, _ = _campaign(tmp_path)
    path = _write_export(tmp_path, EXPORT if separator == "," else TSV_EXPORT)
    result = _ingest_export(camp, path)
    assert sorted(map(tuple, result.new.values.tolist())) == sorted(ANSWERS)
    assert result.unanswered == 1 and result.empty == 1 and result.skipped == 0  # the CSV leaves skipped ones out
    stored = store.read_annotations(camp)
    assert sorted(map(tuple, stored[["example_id", "annotator_id", "label"]].iloc[1:].values.tolist())) \
        == sorted(ANSWERS)
    assert stored["source"].iloc[-1] == f"ingest:{path.name}"
    assert len(_ingest_export(camp, path).new) == 0 and len(store.read_annotations(camp)) == len(stored)

    json_path = tmp_path / "project-3.json"
    json_path.write_text(json.dumps(JSON_EXPORT))
    same = _ingest_export(camp, json_path)  # the same annotations in Label Studio's JSON: all already stored
    assert len(same.new) == 0 and same.already_stored == len(ANSWERS) and same.skipped == 1


@pytest.mark.parametrize("rule, annotators", [
    (dataclasses.replace(RULE, annotator_id="table", annotators={"1": "alice", "2": "bob"}),
     {"alice", "bob"}),
    (RULE, {"1", "2"}),
])
def test_the_annotator_column_becomes_the_annotator_id_the_rule_names(tmp_path, rule, annotators):
    camp, _ = _campaign(tmp_path)
    path = _write_export(tmp_path, "\n".join(line for line in EXPORT.splitlines() if '"3"' not in line) + "\n")
    assert set(_ingest_export(camp, path, rule).new["annotator_id"]) == annotators


def test_an_export_with_emails_reads_them_under_the_email_rule_and_refuses_them_under_user_id(tmp_path):
    camp, _ = _campaign(tmp_path)
    with_emails = EXPORT.replace('"1","2026', '"ann@example.org","2026').replace('"2","2026', '"bo@example.org","2026') \
        .replace('"3","2026', '"cy@example.org","2026')
    path = _write_export(tmp_path, with_emails)
    with pytest.raises(IngestError, match=rf"^{path}:2: the annotator is bo@example.org, an email .*user_id"):
        _ingest_export(camp, path)
    assert len(store.read_annotations(camp)) == 1
    result = _ingest_export(camp, path, dataclasses.replace(RULE, annotator_id="email"))
    assert set(result.new["annotator_id"]) == {"ann@example.org", "bo@example.org"}


@pytest.mark.parametrize("change, rule, message", [
    (lambda t: t.replace('"shipping"', '"{""choices"":[""billing"",""shipping""]}"'), RULE,
     r":2: an annotation chooses 2 classes \(billing, shipping\); each annotation must choose one"),
    (lambda t: t, dataclasses.replace(RULE, annotator_id="email"),
     r":2: the annotator is user 2 without an email, and labelstudio.annotator_id is email; .*crowdloop labelstudio pull"),
    (lambda t: t, dataclasses.replace(RULE, annotator_id="table", annotators={"1": "alice"}),
     r":2: user 2 is not in labelstudio.annotators"),
    (lambda t: t.replace('"example_id"', '"item"', 1), RULE, r":1: a Label Studio export without an example_id column"),
    (lambda t: t.replace('"ex05"', '"nope"'), RULE, r":7: unknown example id 'nope'"),
])
def test_a_bad_export_names_file_and_line_and_stores_nothing(tmp_path, change, rule, message):
    camp, _ = _campaign(tmp_path)
    path = _write_export(tmp_path, change(EXPORT))
    with pytest.raises(IngestError, match=message):
        _ingest_export(camp, path, rule)
    assert len(store.read_annotations(camp)) == 1


def test_a_single_choice_written_as_json_is_that_choice(tmp_path):
    camp, _ = _campaign(tmp_path)
    path = _write_export(tmp_path, EXPORT.replace('"shipping"', '"{""choices"":[""shipping""]}"'))
    assert sorted(map(tuple, _ingest_export(camp, path).new.values.tolist())) == sorted(ANSWERS)
