"""Answer files: what is accepted, and each error names file, line and the culprit."""

import re

import pandas as pd
import pytest

from crowdloop.tasks.ingest import IngestError, read_answer_file, validate_answers

CLASSES = ("billing", "technical")
EXAMPLES = pd.DataFrame({"example_id": ["e1", "e2", "e3", "g1"], "text": ["a", "b", "c", "d"],
                         "split": ["pool", "pool", "pool", "test"], "gold": [None, None, None, "billing"]})
STORED = pd.DataFrame({"example_id": ["e1"], "annotator_id": ["a1"], "label": ["billing"], "round": [0],
                       "source": ["initial"], "time": ["t"]})
HEADER = "example_id,annotator_id,label\n"


def _ingest(path, stored=STORED):
    return validate_answers(read_answer_file(path), source=str(path), examples=EXAMPLES, stored=stored,
                            classes=CLASSES, on_change="reject")


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _fails(tmp_path, name, text, *, line, word):
    path = _write(tmp_path, name, text)
    with pytest.raises(IngestError) as err:
        _ingest(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert word in message, message
    return message


# ---------------------------------------------------------------- accepted files

def test_csv_answers_are_read_in_file_order_with_lines(tmp_path):
    path = _write(tmp_path, "a.csv", HEADER + "e3,a2,billing\n\n e2 , a1 , technical \n")
    answers = read_answer_file(path)
    assert answers.values.tolist() == [["e3", "a2", "billing", 2, "", "", ""], ["e2", "a1", "technical", 4, "", "", ""]]
    assert _ingest(path).new.values.tolist() == [["e3", "a2", "billing"], ["e2", "a1", "technical"]]


def test_the_batch_file_round_trips_with_suggested_annotator_and_blank_labels(tmp_path):
    path = _write(tmp_path, "batch.csv", "example_id,text,suggested_annotator,score,label\n"
                  'e2,"some, text",a2,0.1,technical\ne3,x,a3,0.2,\ne1,y,a4,0.3,billing\n')
    result = _ingest(path)
    assert result.new.values.tolist() == [["e2", "a2", "technical"], ["e1", "a4", "billing"]]
    assert result.unanswered == 1
    assert result.already_stored == 0


def test_an_added_annotator_id_column_overrides_the_suggestion_only_where_filled(tmp_path):
    path = _write(tmp_path, "batch.csv", "example_id,suggested_annotator,label,annotator_id\n"
                  "e2,a2,technical,\ne3,a3,billing,a7\n")
    assert _ingest(path).new.values.tolist() == [["e2", "a2", "technical"], ["e3", "a7", "billing"]]


def test_tsv_and_jsonl(tmp_path):
    tsv = _write(tmp_path, "a.tsv", "label\texample_id\tannotator_id\nbilling\te2\ta1\n")
    jsonl = _write(tmp_path, "a.jsonl", '{"example_id": "e3", "annotator_id": "a9", "label": "technical"}\n\n'
                   '{"example_id": "e2", "annotator_id": "a9", "label": null, "extra": [1]}\n')
    assert _ingest(tsv).new.values.tolist() == [["e2", "a1", "billing"]]
    result = _ingest(jsonl)
    assert result.new.values.tolist() == [["e3", "a9", "technical"]]
    assert result.unanswered == 1
    assert read_answer_file(jsonl)["line"].tolist() == [1, 3]


def test_a_utf8_bom_and_crlf_line_ends_are_fine(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.encode().replace(b"\n", b"\r\n") + b"e2,a1,billing\r\nzz,a1,billing\r\n")
    with pytest.raises(IngestError, match=rf"^{re.escape(str(path))}:3: unknown example id 'zz'"):
        _ingest(path)


def test_rows_already_stored_and_repeats_are_counted_once(tmp_path):
    path = _write(tmp_path, "a.csv", HEADER + "e1,a1,billing\ne2,a1,billing\ne2,a1,billing\ne1,a1,billing\n")
    result = _ingest(path)
    assert result.already_stored == 1
    assert result.new.values.tolist() == [["e2", "a1", "billing"]]
    assert result.repeated == 1  # e2's second row: said, not silently dropped


def test_the_ingest_summary_says_how_many_rows_repeated_an_answer_of_the_file(tmp_path):
    from crowdloop.answers_cmd import summary

    path = _write(tmp_path, "a.csv", HEADER + "e2,a1,billing\ne2,a1,billing\ne3,a1,billing\n")
    line = summary(path, _ingest(path))
    assert "2 new annotations" in line
    assert "1 row repeats an answer given earlier in the file (stored once)" in line
    assert "repeat" not in summary(path, _ingest(_write(tmp_path, "b.csv", HEADER + "e2,a1,billing\n")))


def test_ingesting_the_same_file_twice_adds_nothing_the_second_time(tmp_path):
    path = _write(tmp_path, "a.csv", HEADER + "e2,a1,billing\ne3,a2,technical\n")
    first = _ingest(path)
    stored = pd.concat([STORED, first.new.assign(round=1, source="ingest", time="t")], ignore_index=True)
    second = _ingest(path, stored=stored)
    assert len(first.new) == 2
    assert second.new.empty and list(second.new.columns) == ["example_id", "annotator_id", "label"]
    assert second.already_stored == 2


# ---------------------------------------------------------------- rows that fail

def test_unknown_example(tmp_path):
    _fails(tmp_path, "a.csv", HEADER + "e2,a1,billing\nzz,a1,billing\n", line=3, word="'zz'")


def test_label_outside_the_classes_lists_the_classes(tmp_path):
    msg = _fails(tmp_path, "a.csv", HEADER + "e2,a1,refund\n", line=2, word="'refund'")
    assert "billing, technical" in msg


def test_a_label_in_the_wrong_case_gets_a_hint_and_indices_are_not_labels(tmp_path):
    assert "did you mean 'billing'" in _fails(tmp_path, "a.csv", HEADER + "e2,a1,Billing\n", line=2, word="Billing")
    _fails(tmp_path, "b.csv", HEADER + "e2,a1,0\n", line=2, word="label '0' is not a class")


def test_test_split_examples_are_not_annotated(tmp_path):
    _fails(tmp_path, "a.csv", HEADER + "e2,a1,billing\ng1,a1,billing\n", line=3, word="'g1' belongs to the gold test")


def test_empty_annotator_id(tmp_path):
    _fails(tmp_path, "a.csv", "example_id,suggested_annotator,label\ne2,,billing\n", line=2, word="no annotator id")


def test_conflicting_answers_in_one_file(tmp_path):
    msg = _fails(tmp_path, "a.csv", HEADER + "e2,a1,billing\ne3,a1,billing\ne2,a1,technical\n",
                 line=4, word="on line 2")
    assert "'e2'" in msg and "'a1'" in msg


def test_conflict_with_a_stored_answer_names_its_label_and_round(tmp_path):
    msg = _fails(tmp_path, "a.csv", HEADER + "e1,a1,technical\n", line=2, word="'billing' in round 0")
    assert "'technical'" in msg


def test_the_first_problem_in_file_order_is_reported_and_the_rest_counted(tmp_path):
    msg = _fails(tmp_path, "a.csv", HEADER + "e2,a1,billing\ne3,a1,nope\nzz,a1,billing\ng1,a2,billing\n",
                 line=3, word="'nope'")
    assert "2 more rows below also fail" in msg
    assert msg.endswith("also fail).") and ". " not in msg  # one sentence


def test_line_numbers_count_physical_lines_of_quoted_multiline_fields(tmp_path):
    text = 'example_id,annotator_id,label,note\ne2,a1,billing,"two\nlines"\nbad,a1,billing,x\n'
    _fails(tmp_path, "a.csv", text, line=4, word="'bad'")
    # a row spanning several lines is reported at the line where it starts
    _fails(tmp_path, "b.csv", 'example_id,annotator_id,label,note\ne2,a1,billing,x\nbad,a1,billing,"two\nlines"\n',
           line=3, word="'bad'")


# ---------------------------------------------------------------- files that fail

def test_missing_column_names_it_and_the_columns_found(tmp_path):
    msg = _fails(tmp_path, "a.csv", "example_id,annotator_id\ne2,a1\n", line=1, word="missing column 'label'")
    assert "found: example_id, annotator_id" in msg
    assert "by these names, set by no option: rename the column that holds label in the file's header." in msg
    _fails(tmp_path, "b.tsv", "example_id\tlabel\ne2\tbilling\n", line=1, word="missing column 'annotator_id'")


def test_a_jsonl_key_absent_from_every_object_is_a_missing_column(tmp_path):
    _fails(tmp_path, "a.jsonl", '\n{"example_id": "e2", "annotator_id": "a1", "lable": "billing"}\n',
           line=2, word="missing column 'label'")


def test_invalid_json_lines(tmp_path):
    ok = '{"example_id": "e2", "annotator_id": "a1", "label": "billing"}\n'
    _fails(tmp_path, "a.jsonl", ok + "{oops\n", line=2, word="not valid JSON")
    _fails(tmp_path, "b.jsonl", ok + ok + "[1, 2]\n", line=3, word="expected a JSON object")
    _fails(tmp_path, "c.jsonl", '{"example_id": "e2", "annotator_id": "a1", "label": ["billing"]}\n',
           line=1, word="'label' must be a string")


def test_a_line_separator_inside_a_json_string_does_not_split_the_line(tmp_path):
    path = _write(tmp_path, "a.jsonl", '{"example_id": "e2", "annotator_id": "a1", "label": "billing", '
                  '"note": "x\u2028y"}\n{"example_id": "zz", "annotator_id": "a1", "label": "billing"}\n')
    with pytest.raises(IngestError, match=rf"^{re.escape(str(path))}:2: unknown example id 'zz'"):
        _ingest(path)


def test_an_unclosed_quote_fails_at_the_line_it_opens(tmp_path):
    _fails(tmp_path, "a.csv", HEADER + 'e2,a1,billing\ne3,a1,"billing\ne1,a1,billing\n', line=3, word="malformed CSV")


def test_unreadable_files(tmp_path):
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(IngestError, match=rf"^{re.escape(str(binary))}:1: not UTF-8"):
        _ingest(binary)
    nul = tmp_path / "n.csv"
    nul.write_bytes(HEADER.encode() + b"e2,a1\x00,billing\n")
    with pytest.raises(IngestError, match=rf"^{re.escape(str(nul))}:2: binary data"):
        _ingest(nul)
    latin = tmp_path / "l.csv"
    latin.write_bytes(HEADER.encode() + b"e2,a1,billing\ne3,Jos\xe9,billing\n")
    with pytest.raises(IngestError, match=rf"^{re.escape(str(latin))}:3: not UTF-8"):
        _ingest(latin)
    missing = tmp_path / "missing.csv"
    with pytest.raises(IngestError, match=rf"^{re.escape(str(missing))}: cannot read the file: no such file"):
        _ingest(missing)
    with pytest.raises(IngestError, match=rf"^{re.escape(str(tmp_path / 'empty.csv'))}:1: the file is empty"):
        _ingest(_write(tmp_path, "empty.csv", ""))
    other = _write(tmp_path, "a.xlsx", "x")
    with pytest.raises(IngestError, match=rf"^{re.escape(str(other))}: unsupported file type .*\.csv, \.tsv, \.jsonl"):
        _ingest(other)


def test_a_repeated_header_column_is_refused(tmp_path):
    _fails(tmp_path, "a.csv", "example_id,label,annotator_id,label\ne2,billing,a1,technical\n",
           line=1, word="'label' appears more than once")


def test_a_semicolon_separated_answer_file_is_refused_saying_so(tmp_path):
    _fails(tmp_path, "a.csv", "example_id;annotator_id;label\ne1;a1;billing\n", line=1,
           word="separated by ';' it seems; crowdloop reads comma-separated .csv")
