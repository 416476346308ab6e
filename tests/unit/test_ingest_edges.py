"""Edges of ingestion: short rows, empty files, --skip-invalid, ingest.on_change, control characters in ids, streaming."""

from __future__ import annotations

import re
import tracemalloc
import warnings

import pandas as pd
import pytest

from crowdloop.tasks import ingest, round_data, store
from crowdloop.tasks.ingest import IngestError, ingest_file, read_answer_chunks

CLASSES = ("billing", "technical")
HEADER = "example_id,annotator_id,label\n"


@pytest.fixture
def camp(tmp_path):
    """A store only (no git): examples e1..e4 (g1 gold test), a1 said billing for e1 in round 0."""
    campaign = store.Campaign(tmp_path / "camp")
    store.write_examples(campaign, pd.DataFrame({
        "example_id": ["e1", "e2", "e3", "e4", "g1"], "text": list("abcde"),
        "split": ["pool"] * 4 + ["test"], "gold": [None] * 4 + ["billing"]}))
    store.append_annotations(campaign, pd.DataFrame({"example_id": ["e1"], "annotator_id": ["a1"],
                                                     "label": ["billing"]}), round=0, source="initial")
    return campaign


def _file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _ingest(camp, path, **options):
    return ingest_file(camp, path, classes=CLASSES, **({"on_change": "reject"} | options))


def _refused(camp, path, *, line, word, **options):
    before = store.data_hash(camp)
    with pytest.raises(IngestError) as err:
        _ingest(camp, path, **options)
    assert str(err.value).startswith(f"{path}:{line}: ") and word in str(err.value), str(err.value)
    assert store.data_hash(camp) == before
    return str(err.value)


def test_a_short_or_long_row_is_malformed_not_unanswered(tmp_path, camp):
    _refused(camp, _file(tmp_path, "a.csv", HEADER + "e2,a1,billing\ne3,a1\n"), line=3, word="2 fields where the header has 3")
    _refused(camp, _file(tmp_path, "b.tsv", "example_id\tannotator_id\tlabel\ne2\n"), line=2, word="1 field where")
    _refused(camp, _file(tmp_path, "c.csv", HEADER + "e2,a1,billing,extra\n"), line=2, word="4 fields where")


def test_an_empty_file_and_a_header_alone_are_reported_as_such(tmp_path, camp):
    _refused(camp, _file(tmp_path, "a.csv", ""), line=1, word="the file is empty")
    _refused(camp, _file(tmp_path, "b.jsonl", "\n\n"), line=1, word="the file is empty")
    _refused(camp, _file(tmp_path, "c.csv", HEADER + "\n"), line=1, word="holds no answers")


def test_skip_invalid_stores_the_valid_rows_and_writes_the_refused_ones_with_reasons(tmp_path, camp):
    path = _file(tmp_path, "answers.csv", HEADER + "e2,a1,billing\nzz,a1,billing\ne3,a1,refund\ne3,a2\n"
                 "e4,a1,technical\n")
    result = _ingest(camp, path, skip_invalid=True)
    assert result.new.values.tolist() == [["e2", "a1", "billing"], ["e4", "a1", "technical"]]
    assert result.refused_file == tmp_path / "answers.refused.csv"
    refused = pd.read_csv(result.refused_file)
    assert refused["line"].tolist() == [3, 4, 5]
    assert "unknown example id 'zz'" in refused["reason"][0] and "'refund' is not a class" in refused["reason"][1]
    assert "2 fields where the header has 3" in refused["reason"][2]
    stored = store.read_annotations(camp)
    assert stored.iloc[1:][["example_id", "label"]].values.tolist() == [["e2", "billing"], ["e4", "technical"]]
    assert ingest.commit_message([result]) == "Ingest 2 annotations from answers.csv (round 0)"


@pytest.mark.parametrize("policy, counted", [
    ("keep_both", [("e1", "a1", "billing"), ("e1", "a1#2", "technical")]),
    ("latest", [("e1", "a1", "technical")]),
])
def test_a_changed_answer_follows_ingest_on_change(tmp_path, camp, policy, counted):
    path = _file(tmp_path, "a.csv", HEADER + "e1,a1,technical\n")
    msg = _refused(camp, path, line=2, word="'billing' in round 0 (the campaign's initial answers) but this row says 'technical'")
    assert "ingest.on_change" in msg  # reject, the default: refused with the way out
    result = _ingest(camp, path, on_change=policy)
    assert result.new.values.tolist() == [["e1", "a1", "technical"]]
    stored = store.read_annotations(camp)
    assert len(stored) == 2  # both kept: part files are never rewritten
    answers = round_data.in_force(stored, on_change=policy)
    assert sorted(map(tuple, answers[["example_id", "annotator_id", "label"]].values.tolist())) == counted
    assert _ingest(camp, path, on_change=policy).new.empty  # the same answer again is stored once


def test_latest_takes_an_answer_changed_back(tmp_path, camp):
    _ingest(camp, _file(tmp_path, "a.csv", HEADER + "e1,a1,technical\n"), on_change="latest")
    back = _ingest(camp, _file(tmp_path, "b.csv", HEADER + "e1,a1,billing\n"), on_change="latest")
    assert back.new.values.tolist() == [["e1", "a1", "billing"]]
    answers = round_data.in_force(store.read_annotations(camp), on_change="latest")
    assert answers[["annotator_id", "label"]].values.tolist() == [["a1", "billing"]]


def test_latest_a_file_ingested_again_does_not_undo_a_later_answer(tmp_path, camp):
    """Under latest, running an old ingest again (or ingesting the file grown since) stores nothing and
    leaves the later answer in force; a change back from a file of another name is still taken."""
    from crowdloop.answers_cmd import summary

    first = _file(tmp_path, "first.csv", HEADER + "e2,a1,billing\n")
    _ingest(camp, first, on_change="latest")
    _ingest(camp, _file(tmp_path, "second.csv", HEADER + "e2,a1,technical\n"), on_change="latest")
    again = _ingest(camp, first, on_change="latest")
    assert again.new.empty and (again.already_stored, again.replaced) == (1, 1)
    assert "1 of those is an answer this file gave before that a later answer replaced" in summary(first, again)
    first.write_text(HEADER + "e2,a1,billing\ne3,a1,billing\n")  # grown: only the new row is new
    grown = _ingest(camp, first, on_change="latest")
    assert grown.new.values.tolist() == [["e3", "a1", "billing"]] and grown.replaced == 1
    stored = store.read_annotations(camp)
    assert len(stored) == 4  # initial e1, e2 billing, e2 technical, e3: nothing twice
    answers = round_data.in_force(stored, on_change="latest").set_index("example_id")["label"]
    assert answers.to_dict() == {"e1": "billing", "e2": "technical", "e3": "billing"}


def test_latest_a_change_within_a_file_is_stored_once_however_often_it_is_ingested(tmp_path, camp):
    path = _file(tmp_path, "c.csv", HEADER + "e3,a2,billing\ne3,a2,technical\n")
    assert len(_ingest(camp, path, on_change="latest").new) == 2  # both stored, the later counts
    for _ in range(2):
        assert _ingest(camp, path, on_change="latest").new.empty
    stored = store.read_annotations(camp)
    assert len(stored) == 3
    assert round_data.in_force(stored, on_change="latest").query("example_id == 'e3'")["label"].tolist() == ["technical"]


@pytest.mark.parametrize("annotator", ["tab\there", "bell\x07", "line\u0085x"[:6] + "\x1b[31m"])
def test_an_annotator_id_with_a_control_character_is_refused(tmp_path, camp, annotator):
    path = tmp_path / "a.jsonl"
    path.write_text(pd.DataFrame({"example_id": ["e2"], "annotator_id": [annotator], "label": ["billing"]})
                    .to_json(orient="records", lines=True))
    _refused(camp, path, line=1, word="holds a control character")


def test_a_file_is_read_in_chunks_with_the_right_lines(tmp_path, camp):
    path = _file(tmp_path, "a.csv", HEADER + "e2,a1,billing\n\ne3,a1,billing\ne4,a1,technical\ne2,a2,billing\n")
    chunks = list(read_answer_chunks(path, chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2]
    assert pd.concat(chunks)["line"].tolist() == [2, 4, 5, 6]


def test_a_large_file_streams_in_flat_memory(tmp_path, camp, monkeypatch):
    """12 MB of answers with a long text column: ingesting them never holds the file in memory."""
    text = "x" * 6000
    rows = [f"e{1 + i % 4},s{i},billing,{text}\n" for i in range(2000)]
    path = _file(tmp_path, "big.csv", "example_id,annotator_id,label,text\n" + "".join(rows))
    size = path.stat().st_size
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 100)
    tracemalloc.start()
    result = _ingest(camp, path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(result.new) == 2000 and size > 12e6
    assert peak < size / 4, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


def test_errors_name_file_and_line_in_every_format(tmp_path, camp):
    bad = {"a.csv": HEADER + "e2,a1,billing\ne9,a1,billing\n",
           "a.tsv": "example_id\tannotator_id\tlabel\ne2\ta1\tbilling\ne9\ta1\tbilling\n",
           "a.jsonl": '{"example_id": "e2", "annotator_id": "a1", "label": "billing"}\n'
                      '{"example_id": "e9", "annotator_id": "a1", "label": "billing"}\n'}
    for name, text in bad.items():
        msg = _refused(camp, _file(tmp_path, name, text), line=3 if name != "a.jsonl" else 2, word="'e9'")
        assert re.match(rf"^{re.escape(str(tmp_path / name))}:\d+: unknown example id 'e9'", msg)


@pytest.mark.parametrize("header,column,meant", [
    ("example_id,suggested_annotator,label,annotator", "annotator", "annotator_id"),
    ("example_id,suggested_annotator,label,Annotator_ID", "Annotator_ID", "annotator_id"),
    ("example_id,suggested_annotator,label,annotator id", "annotator id", "annotator_id"),
    ("example_id,suggested_annotator,label,worker_id", "worker_id", "annotator_id"),
    ("example_id,suggested_annotator,label,WorkerId", "WorkerId", "annotator_id"),
    ("example_id,suggested_annotator,label,User", "User", "annotator_id"),
    ("example_id,Suggested Annotator,label,x", "Suggested Annotator", "suggested_annotator"),
    ("example_id,annotator_id,Label,x", "Label", "label"),
    ("example_id,annotator_id,label,Label", "Label", "label"),  # read before: every row unanswered
    ("example_id,annotator_id,answer,x", "answer", "label"),
    ("Example ID,annotator_id,label,x", "Example ID", "example_id"),
])
def test_a_column_that_looks_meant_for_one_ingest_reads_refuses_the_file(tmp_path, camp, header, column, meant):
    path = _file(tmp_path, "answers.csv", f"{header}\ne2,a2,billing,a7\n")
    msg = _refused(camp, path, line=1, word=f"column '{column}' is not one crowdloop reads; did you mean {meant}?")
    assert f"found: {header.replace(',', ', ')}" in msg


def test_a_misnamed_annotator_key_in_jsonl_refuses_the_file(tmp_path, camp):
    path = _file(tmp_path, "answers.jsonl", '{"example_id": "e2", "suggested_annotator": "a2", "label": "billing", '
                                            '"Annotator_ID": "a7"}\n')
    _refused(camp, path, line=1, word="column 'Annotator_ID' is not one crowdloop reads; did you mean annotator_id?")


def test_columns_that_look_meant_for_none_are_ignored(tmp_path, camp):
    path = _file(tmp_path, "batch.csv", "example_id,text,suggested_annotator,score,cost,label,annotator_id,notes,"
                                        "comment\ne2,b,a2,0.5,1,billing,a7,asked twice,\n")
    assert _ingest(camp, path).new.values.tolist() == [["e2", "a7", "billing"]]
    # with annotator_id there, another name for who answered is an extra column too
    path = _file(tmp_path, "more.csv", "example_id,annotator_id,label,user\ne3,a8,technical,someone\n")
    assert _ingest(camp, path).new.values.tolist() == [["e3", "a8", "technical"]]


def test_a_refused_change_names_the_round_and_the_file_the_earlier_answer_was_ingested_from(tmp_path, camp):
    _ingest(camp, _file(tmp_path, "monday.csv", HEADER + "e2,a2,billing\n"))
    msg = _refused(camp, _file(tmp_path, "tuesday.csv", HEADER + "e2,a2,technical\n"), line=2,
                   word="the label 'billing' in round 0 (ingested from monday.csv) but this row says 'technical'")
    assert "tuesday.csv:2:" in msg
    _refused(camp, _file(tmp_path, "again.csv", HEADER + "e1,a1,technical\n"), line=2,
             word="'billing' in round 0 (the campaign's initial answers) but")


def test_answers_given_as_numbers_are_checked_as_text_without_a_warning(camp):
    """A DataFrame of answers (init_campaign's initial=) may hold ids as ints, and gaps."""
    examples = store.read_examples(camp).assign(example_id=["1", "2", "3", "4", "g1"])
    answers = pd.DataFrame({"example_id": [1, 2, 3], "annotator_id": [7, 8, None], "label": ["billing"] * 3,
                            "line": [1, 2, 3]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(IngestError, match=r"^initial answers:3: no annotator id for example '3'"):
            ingest.validate_answers(answers, source="initial answers", examples=examples,
                                    stored=store.read_annotations(camp), classes=CLASSES, on_change="reject")
        kept = ingest.validate_answers(answers.iloc[:2].astype({"annotator_id": int}), source="initial answers",
                                       examples=examples, stored=store.read_annotations(camp), classes=CLASSES,
                                       on_change="reject")
    assert kept.new.values.tolist() == [["1", "7", "billing"], ["2", "8", "billing"]]
    # pandas holds int ids with a gap as floats (7.0): they are still annotator '7', not '7.0'
    gap = answers.assign(annotator_id=[7, 8, None], example_id=[1.0, 2.0, 3.0]).iloc[:2]
    assert gap["annotator_id"].dtype == float
    kept = ingest.validate_answers(gap, source="initial answers", examples=examples,
                                   stored=store.read_annotations(camp), classes=CLASSES, on_change="reject")
    assert kept.new.values.tolist() == [["1", "7", "billing"], ["2", "8", "billing"]]


def test_an_unknown_or_empty_example_id_points_to_the_campaign_s_examples_not_only_a_round_s_batch():
    # init_campaign's initial answers are checked the same way, before any round (and batch) exists
    from crowdloop.tasks.answer_checks import row_problem

    split = {"e1": "pool"}
    for example in ("zz", ""):
        problem = row_problem(example, "w", "a", split, ["a", "b"])
        assert "the campaign's examples" in problem and "round's batch.csv" not in problem


def test_a_folder_given_as_the_answer_file_is_named_a_folder_not_a_file_type(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    with pytest.raises(IngestError, match=rf"^{re.escape(str(folder))}: a folder, not an answer file"):
        next(read_answer_chunks(folder))


def test_a_csv_file_whose_header_has_tabs_and_no_commas_is_read_as_tab_separated(tmp_path, camp):
    # Label Studio writes its TSV export to a *.csv file
    path = _file(tmp_path, "tabs.csv", "example_id\tannotator_id\tlabel\ne2\ta2\tbilling\ne3\ta2\ttechnical\n")
    assert sorted(map(tuple, _ingest(camp, path).new.values.tolist())) == [("e2", "a2", "billing"),
                                                                           ("e3", "a2", "technical")]
    # a header with commas stays comma-separated, tabs in its cells and all
    _refused(camp, _file(tmp_path, "mixed.csv", HEADER + "e4\ta2\tbilling\n"), line=2, word="1 field where")
