"""Answer files: what is accepted, and each error names file, line and the culprit."""

import pandas as pd
import pytest

from crowdloop.tasks.ingest import IngestError, read_answer_file, validate_answers

CLASSES = ("billing", "technical")
EXAMPLES = pd.DataFrame({"example_id": ["e1", "e2", "e3", "g1"], "text": ["a", "b", "c", "d"],
                         "split": ["pool", "pool", "pool", "test"], "gold": [None, None, None, "billing"]})
STORED = pd.DataFrame({"example_id": ["e1"], "annotator_id": ["a1"], "label": ["billing"], "round": [0],
                       "source": ["initial"], "time": ["t"]})


def _ingest(path):
    return validate_answers(read_answer_file(path), source=str(path), examples=EXAMPLES, stored=STORED,
                            classes=CLASSES)


def _fails(tmp_path, name, text, *, line, word):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(IngestError) as err:
        _ingest(path)
    message = str(err.value)
    assert f"{path}:{line}:" in message, message
    assert word in message, message
    return message


def test_csv_answers_are_read_in_file_order(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("example_id,annotator_id,label\ne2,a1,technical\ne3,a2,billing\n")
    result = _ingest(path)
    assert result.new.values.tolist() == [["e2", "a1", "technical"], ["e3", "a2", "billing"]]


def test_the_batch_file_round_trips_with_suggested_annotator_and_blank_labels(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("example_id,text,suggested_annotator,score,label\n"
                    'e2,"some, text",a2,0.1,technical\ne3,x,a3,0.2,\n')
    result = _ingest(path)
    assert result.new.values.tolist() == [["e2", "a2", "technical"]]
    assert result.unanswered == 1


def test_tsv_and_jsonl(tmp_path):
    tsv = tmp_path / "a.tsv"
    tsv.write_text("example_id\tannotator_id\tlabel\ne2\ta1\tbilling\n")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"example_id": "e3", "annotator_id": "a9", "label": "technical"}\n\n')
    assert len(_ingest(tsv).new) == 1
    assert _ingest(jsonl).new.values.tolist() == [["e3", "a9", "technical"]]


def test_rows_already_stored_and_repeats_are_counted_once(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("example_id,annotator_id,label\ne1,a1,billing\ne2,a1,billing\ne2,a1,billing\n")
    result = _ingest(path)
    assert result.already_stored == 1
    assert result.new.values.tolist() == [["e2", "a1", "billing"]]


def test_unknown_example(tmp_path):
    _fails(tmp_path, "a.csv", "example_id,annotator_id,label\ne2,a1,billing\nzz,a1,billing\n", line=3, word="zz")


def test_label_outside_the_classes(tmp_path):
    msg = _fails(tmp_path, "a.csv", "example_id,annotator_id,label\ne2,a1,refund\n", line=2, word="refund")
    assert "billing, technical" in msg


def test_missing_column(tmp_path):
    _fails(tmp_path, "a.csv", "example_id,annotator_id\ne2,a1\n", line=1, word="'label'")


def test_test_split_examples_are_not_annotated(tmp_path):
    _fails(tmp_path, "a.csv", "example_id,annotator_id,label\ng1,a1,billing\n", line=2, word="test split")


def test_conflicting_answers_in_one_file(tmp_path):
    _fails(tmp_path, "a.csv", "example_id,annotator_id,label\ne2,a1,billing\ne2,a1,technical\n",
           line=3, word="line 2")


def test_conflict_with_a_stored_answer(tmp_path):
    _fails(tmp_path, "a.csv", "example_id,annotator_id,label\ne1,a1,technical\n", line=2, word="round 0")


def test_line_numbers_count_physical_lines_of_quoted_multiline_fields(tmp_path):
    text = 'example_id,annotator_id,label,note\ne2,a1,billing,"two\nlines"\nbad,a1,billing,x\n'
    _fails(tmp_path, "a.csv", text, line=4, word="bad")


def test_invalid_json_line(tmp_path):
    _fails(tmp_path, "a.jsonl", '{"example_id": "e2", "annotator_id": "a1", "label": "billing"}\n{oops\n',
           line=2, word="not valid JSON")


def test_unreadable_files(tmp_path):
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    with pytest.raises(IngestError, match="b.csv"):
        _ingest(binary)
    with pytest.raises(IngestError, match="cannot read"):
        _ingest(tmp_path / "missing.csv")
    other = tmp_path / "a.xlsx"
    other.write_text("x")
    with pytest.raises(IngestError, match=r"\.csv, \.tsv, \.jsonl"):
        _ingest(other)
