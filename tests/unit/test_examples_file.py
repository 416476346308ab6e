"""A campaign's examples file: every cell read as text, every bad row refused at its file and line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from crowdloop.examples_file import examples_frame, read_examples_file
from crowdloop.tasks.errors import CrowdloopError
from crowdloop.tasks.import_values import Origin


def _refused(path, text: str, *words: str, classes=("spam", "ham")) -> str:
    path.write_text(text)
    with pytest.raises(CrowdloopError) as caught:
        read_examples_file(path, classes=classes)
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message
    return message


@pytest.mark.parametrize("text", ['""', '"   "'])
def test_an_empty_or_blank_text_is_refused_at_its_line(tmp_path, text):
    _refused(tmp_path / "examples.csv", f"id,text\ne1,hello\ne2,{text}\ne3,three\n",
             "examples.csv:3:", "example 'e2' has an empty text")


@pytest.mark.parametrize("cell", ["", '""', "  "])
def test_an_empty_id_is_refused_at_its_line_not_stored_as_nan(tmp_path, cell):
    _refused(tmp_path / "examples.csv", f"id,text\ne1,hello\n{cell},world\ne3,three\n", "examples.csv:3:", "empty id")


def test_an_empty_text_in_jsonl_is_refused_at_its_line(tmp_path):
    rows = [{"id": "e1", "text": "a"}, {"id": "e2", "text": None}]
    _refused(tmp_path / "examples.jsonl", "".join(json.dumps(r) + "\n" for r in rows), "examples.jsonl:2:",
             "example 'e2' has an empty text")


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_ids_and_texts_are_read_as_the_file_writes_them(tmp_path, suffix, sep):
    path = tmp_path / f"examples{suffix}"
    path.write_text("\n".join(sep.join(row) for row in [("id", "text"), ("007", "NA"), ("1.0", "null"),
                                                         ("NA", "1.0"), ("0e12", "nan")]) + "\n")
    read = read_examples_file(path)
    assert read["example_id"].tolist() == ["007", "1.0", "NA", "0e12"]
    assert read["text"].tolist() == ["NA", "null", "1.0", "nan"]


def test_jsonl_ids_keep_their_written_form(tmp_path):
    path = tmp_path / "examples.jsonl"
    path.write_text('{"id": "007", "text": "a"}\n{"id": 1.0, "text": "b"}\n{"id": 7, "text": "c"}\n')
    assert read_examples_file(path)["example_id"].tolist() == ["007", "1.0", "7"]


@pytest.mark.parametrize("header,column,meant", [
    ("ID,text", "ID", "id"), ("Id,text", "Id", "id"), ("Example ID,text", "Example ID", "example_id"),
    ("id,Text", "Text", "text"), ("id, text ,split", " text ", "text"), ("id,text,Gold", "Gold", "gold"),
    ("id,text,label", "label", "gold"), ("id,text,SPLIT", "SPLIT", "split"),
])
def test_a_column_spelled_like_one_crowdloop_reads_is_refused_with_did_you_mean(tmp_path, header, column, meant):
    message = _refused(tmp_path / "examples.csv", f"{header}\n" + "e1,one,pool\n" * 1,
                       "examples.csv:1:", f"column '{column}'", f"did you mean {meant}?")
    assert f"found: {header.replace(',', ', ')}" in message


def test_a_missing_column_is_named_as_the_user_writes_it_with_the_files_own_columns(tmp_path):
    message = _refused(tmp_path / "examples.csv", "key,text\ne1,one\n", "examples.csv:1:", "missing column 'id'",
                       "(found: key, text)")
    assert "example_id" not in message.split(";")[0]
    _refused(tmp_path / "examples.csv", "id,body\ne1,one\n", "missing column 'text'", "(found: id, body)")


def test_columns_crowdloop_does_not_read_are_left_alone(tmp_path):
    path = tmp_path / "examples.csv"
    path.write_text("id,text,notes,source\ne1,one,check,web\ne2,two,,mail\n")
    read = read_examples_file(path)
    assert list(read.columns) == ["example_id", "text", "split", "gold"]
    assert read["split"].tolist() == ["pool", "pool"] and read["gold"].tolist() == [None, None]


def test_a_repeated_id_names_the_file_and_both_lines(tmp_path):
    _refused(tmp_path / "examples.csv", "id,text\ne1,one\ne2,two\ne1,again\n",
             "examples.csv:4:", "example id 'e1' appears more than once", "(first on line 2)")


def test_an_unknown_split_or_gold_is_refused_at_its_line(tmp_path):
    _refused(tmp_path / "examples.csv", "id,text,split\ne1,one,pool\ne2,two,Test\n", "examples.csv:3:",
             "unknown split 'Test'")
    _refused(tmp_path / "examples.csv", "id,text,gold\ne1,one,spam\ne2,two,\ne3,three,egg\n", "examples.csv:4:",
             "gold label 'egg' is not among the classes spam, ham")


def test_a_dataframe_is_checked_by_row():
    frame = pd.DataFrame({"id": ["e1", "e2"], "text": ["one", None]})
    with pytest.raises(CrowdloopError, match=r"^examples, row 2: example 'e2' has an empty text"):
        examples_frame(frame)
    with pytest.raises(CrowdloopError, match=r"missing column 'id' \(found: key, text\)"):
        examples_frame(frame.rename(columns={"id": "key"}), origin=Origin("examples"))


def test_a_semicolon_separated_file_is_refused_saying_so(tmp_path):
    _refused(tmp_path / "examples.csv", "id;text\ne1;hello\n", "examples.csv:1:", "separated by ';'",
             "save the file with commas")


def test_a_tab_separated_file_named_csv_is_read_as_tab_separated(tmp_path):
    path = tmp_path / "examples.csv"
    path.write_text("id\ttext\tgold\ne1\thello, world\tspam\ne2\tbye\t\n")
    table = read_examples_file(path, classes=("spam", "ham"))
    assert table[["example_id", "text", "gold"]].values.tolist() == [["e1", "hello, world", "spam"], ["e2", "bye", None]]
