"""Importers on small files generated in each format; the real datasets only in one slow test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks import import_values, importers, replay_split
from crowdloop.tasks.importers import ImportFormatError, Replay

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
ANSWERS = ["example_id", "annotator_id", "label"]


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return sorted(map(tuple, frame.loc[:, ANSWERS].values.tolist()))


# ---------------------------------------------------------------- tutorial files

def _tutorial(folder: Path, *, extra_json: bool = True, extra_npy: bool = False) -> Path:
    """The tutorial's five files in miniature; ids that look like numbers on purpose."""
    folder.mkdir()
    (folder / "X_labeled_full.csv").write_text(
        "id,text,a6,a12,a16\n"
        "0e12,hello there,1.0,,0.0\n"      # '0e12' would parse as the float 0.0
        "12,please help,,1.0,1.0\n")
    (folder / "X_unlabeled.csv").write_text("id,text\n0031114c,thanks\n007,go away\n")
    (folder / "test.csv").write_text("text,a1,a2,label,id\nthank you,1,1,1,t1\nno,0,,0,t2\n")
    extra = {"0e12": {"a20": 1}, "12": {"a6": 0}, "0031114c": {"a6": 1, "a12": 0}, "007": {"a16": 0}}
    if extra_json:
        (folder / "extra_annotations.json").write_text(json.dumps(extra))
    if extra_npy:  # the tutorial's original: float labels, pickled
        floats = {k: {a: float(v) for a, v in answers.items()} for k, answers in extra.items()}
        np.save(folder / "extra_annotations.npy", np.array(floats, dtype=object), allow_pickle=True)
    return folder


def test_tutorial_files_give_initial_pool_and_a_gold_test_split(tmp_path):
    replay = importers.from_tutorial(_tutorial(tmp_path / "t", extra_npy=True),
                                     label_names={"0": "impolite", "1": "polite"})
    assert replay.classes == ("impolite", "polite")
    assert replay.initial.values.tolist() == [["0e12", "a6", "polite"], ["0e12", "a16", "impolite"],
                                              ["12", "a12", "polite"], ["12", "a16", "polite"]]
    assert _rows(replay.uncollected) == [("0031114c", "a12", "impolite"), ("0031114c", "a6", "polite"),
                                  ("007", "a16", "impolite"), ("0e12", "a20", "polite"), ("12", "a6", "impolite")]
    examples = replay.examples.set_index("example_id")
    assert list(replay.examples.columns) == ["example_id", "text", "split", "gold"]
    assert examples["split"].to_dict() == {"0e12": "pool", "12": "pool", "0031114c": "pool", "007": "pool",
                                           "t1": "test", "t2": "test"}
    assert examples.loc[["t1", "t2"], "gold"].tolist() == ["polite", "impolite"]
    assert examples.loc[["0e12", "007"], "gold"].isna().all()


@pytest.mark.parametrize("protocol,start", [
    ({}, 4),  # the files' own start: X_labeled_full.csv's 4 labels on 2 examples
    ({"n_start": 3, "labels_per_start": 1}, 3),  # asked for: 3 examples x 1 label, drawn (was the files' 4, silently)
    ({"n_start": 1}, 2),  # 1 example x the preset's 2 labels
])
def test_a_simulation_of_tutorial_files_starts_as_the_start_flags_say(tmp_path, monkeypatch, protocol, start):
    from crowdloop import api
    from crowdloop.flows import simulate
    from crowdloop.tasks import simulation_store

    monkeypatch.setattr(simulate, "simulate_flow", lambda out, *args, **kwargs: {"paths": []})
    out = tmp_path / "out"
    api.simulate(_tutorial(tmp_path / "t"), seeds=1, strategies=["random"], out=out, protocol=protocol)
    replay = simulation_store.read_replay(out)
    assert len(replay.initial) == start
    assert replay.initial["example_id"].nunique() == protocol.get("n_start", 2)


def test_tutorial_without_label_names_uses_the_label_strings(tmp_path):
    replay = importers.from_tutorial(_tutorial(tmp_path / "t"))
    assert replay.classes == ("0", "1")
    assert set(replay.initial["label"]) | set(replay.uncollected["label"]) == {"0", "1"}


def test_pickled_pool_is_refused_without_allow_pickle(tmp_path):
    folder = _tutorial(tmp_path / "t", extra_json=False, extra_npy=True)
    with pytest.raises(ImportFormatError, match="allow_pickle") as err:
        importers.from_tutorial(folder)
    assert "extra_annotations.npy" in str(err.value) and "runs code" in str(err.value)


def test_pickled_pool_loads_with_a_warning_when_allowed(tmp_path):
    folder = _tutorial(tmp_path / "t", extra_json=False, extra_npy=True)
    with pytest.warns(UserWarning, match="runs code"):
        replay = importers.from_tutorial(folder, allow_pickle=True)
    from_json = importers.from_tutorial(_tutorial(tmp_path / "j"))
    assert _rows(replay.uncollected) == _rows(from_json.uncollected)  # float 1.0 from the pickle is class '1'


def test_tutorial_pool_for_an_unknown_example_is_an_error(tmp_path):
    folder = _tutorial(tmp_path / "t")
    (folder / "extra_annotations.json").write_text(json.dumps({"nope": {"a1": 1}}))
    with pytest.raises(ImportFormatError, match=r"extra_annotations\.json.*'nope'"):
        importers.from_tutorial(folder)


def test_tutorial_annotation_given_twice_is_an_error(tmp_path):
    folder = _tutorial(tmp_path / "t")
    (folder / "extra_annotations.json").write_text(json.dumps({"12": {"a12": 1}}))  # a12 already in initial
    with pytest.raises(ImportFormatError, match="annotator 'a12' labels example '12' more than once"):
        importers.from_tutorial(folder)


# ---------------------------------------------------------------- long format

ANNOTATIONS = pd.DataFrame({"item": [1, 1, 2, 2, 3], "worker": ["w1", "w2", "w1", "w3", "w2"],
                            "response": ["1.0", "0", "1", "1.0", "0.0"], "gold": ["1", "1", "1", "1", "0"]})
ITEMS = pd.DataFrame({"id": ["1", "2", "3"], "premise": ["a", "b", "c"], "hyp": ["x", "y", "z"],
                      "value": ["TRUE", "TRUE", "FALSE"]})


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return path


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl"])
def test_long_format_joins_text_columns_and_reads_gold_from_the_annotations(tmp_path, ext):
    replay = importers.from_long(_write(ANNOTATIONS, tmp_path / f"ann.{ext}"),
                                 examples_file=_write(ITEMS, tmp_path / f"items.{ext}"), example_col="item",
                                 annotator_col="worker", label_col="response", gold_col="gold",
                                 examples_id_col="id", text_cols=("premise", "hyp"), text_sep=" | ")
    assert replay.classes == ("0", "1")
    assert replay.uncollected.values.tolist() == [["1", "w1", "1"], ["1", "w2", "0"], ["2", "w1", "1"], ["2", "w3", "1"],
                                           ["3", "w2", "0"]]  # JSONL ints and CSV '1' are the same id
    assert replay.examples["text"].tolist() == ["a | x", "b | y", "c | z"]
    assert replay.examples["gold"].tolist() == ["1", "1", "0"]
    assert set(replay.examples["split"]) == {"pool"} and replay.initial.empty


def test_long_format_gold_from_the_examples_file_needs_a_mapping_when_vocabularies_differ(tmp_path):
    ann, items = _write(ANNOTATIONS, tmp_path / "ann.csv"), _write(ITEMS, tmp_path / "items.csv")
    options = dict(examples_file=items, example_col="item", annotator_col="worker", label_col="response",
                   examples_id_col="id", text_cols=("premise",), examples_gold_col="value")
    with pytest.raises(ImportFormatError, match=r"\['FALSE', 'TRUE'\].*\['0', '1'\].*label_names") as err:
        importers.from_long(ann, **options)
    assert "items.csv" in str(err.value) and "--label-names" in str(err.value)
    replay = importers.from_long(ann, label_names={"TRUE": "1", "FALSE": "0"}, **options)
    assert replay.examples["gold"].tolist() == ["1", "1", "0"] and replay.classes == ("0", "1")


def test_long_format_without_examples_file_takes_text_from_the_annotations(tmp_path):
    path = _write(pd.DataFrame({"example_id": ["a", "a", "b"], "annotator_id": [1, 2, 1], "label": ["x", "y", ""],
                                "text": ["t1", "t1", "t2"]}), tmp_path / "a.csv")
    replay = importers.from_long(path)
    assert replay.examples[["example_id", "text"]].values.tolist() == [["a", "t1"], ["b", "t2"]]
    assert replay.uncollected.values.tolist() == [["a", "1", "x"], ["a", "2", "y"]]  # the empty label is skipped


def test_conflicting_gold_names_the_line(tmp_path):
    path = _write(pd.DataFrame({"example_id": ["1", "1"], "annotator_id": ["a", "b"], "label": ["0", "1"],
                                "text": ["t", "t"], "gold": ["0", "1"]}), tmp_path / "a.csv")
    with pytest.raises(ImportFormatError, match=r"a\.csv:3: example '1' has gold '1'.*'0'"):
        importers.from_long(path, gold_col="gold")


# ---------------------------------------------------------------- wide format and datasets

def test_wide_format_skips_empty_cells_and_reads_gold(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("id,text,ann_x,ann_y,truth\n1,a,cat,dog,cat\n2.0,b,,dog,dog\n")
    replay = importers.from_wide(path, gold_col="truth")
    assert replay.classes == ("cat", "dog")
    assert replay.uncollected.values.tolist() == [["1", "ann_x", "cat"], ["1", "ann_y", "dog"], ["2", "ann_y", "dog"]]
    assert replay.examples["gold"].tolist() == ["cat", "dog"]
    only_y = importers.from_wide(path, annotator_cols=["ann_y", "ann_x"], gold_col="truth")
    assert len(only_y.uncollected) == 3


def test_wide_format_refuses_a_label_column_taken_for_an_annotator_and_melts_one_named_label(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("id,text,a1,a2,label\n1,a,0,1,1\n2,b,0,,0\n")
    with pytest.raises(ImportFormatError, match=r"wide\.csv: column 'label' would be read as an annotator's "
                                                r"labels.*--gold-col label.*--annotator-cols"):
        importers.from_wide(path)
    assert importers.from_wide(path, gold_col="label").examples["gold"].tolist() == ["1", "0"]
    listed = importers.from_wide(path, annotator_cols=["a1", "label"])  # named on purpose: an annotator
    assert listed.uncollected.values.tolist() == [["1", "a1", "0"], ["1", "label", "1"], ["2", "a1", "0"],
                                                  ["2", "label", "0"]]


@pytest.mark.parametrize("name, body, read, where", [
    ("long.csv", "example_id,annotator_id,label,text,gold\n1,a,0,t,0\n2,a,1,u,1\n2,b,maybe,u,1\n",
     lambda path, **o: importers.from_long(path, gold_col="gold", **o), r"long\.csv:4: annotator 'b'"),
    ("wide.csv", "id,text,a,b,truth\n1,t,0,0,0\n2,u,1,maybe,1\n",
     lambda path, **o: importers.from_wide(path, gold_col="truth", **o), r"wide\.csv:3: annotator 'b'"),
])
def test_an_annotation_label_no_gold_label_has_is_refused_unless_label_names_lists_it(tmp_path, name, body, read,
                                                                                     where):
    path = tmp_path / name
    path.write_text(body)
    with pytest.raises(ImportFormatError, match=where + r" gives example '2' the label 'maybe', which is not among "
                                                        r"the classes of the gold labels \['0', '1'\].*--label-names "
                                                        r"0=0,1=1,maybe=maybe"):
        read(path)
    kept = read(path, label_names={"0": "0", "1": "1", "maybe": "maybe"})  # a rare class the gold set misses
    assert kept.classes == ("0", "1", "maybe")


def test_label_names_merging_every_class_into_one_says_so(tmp_path):
    with pytest.raises(ImportFormatError, match=r"a classifier needs two, and --label-names \(label_names\) maps "
                                                r"'0', '1' all onto 'yes'"):
        importers.from_long(_long_file(tmp_path, "1,a,0,t\n2,a,1,t\n"), label_names={"0": "yes", "1": "yes"})


def test_a_lewidi_file_read_as_a_table_lists_a_few_columns_and_names_the_format(tmp_path):
    path = tmp_path / "HS-Brexit_dev.json"
    path.write_text(json.dumps({str(i): {"text": "t", "annotators": "a,b", "annotations": "0,1", "hard_label": "0"}
                                for i in range(1, 31)}))
    with pytest.raises(ImportFormatError, match=r"missing column 'example_id' \(found: 1, 2, 3, 4, 5, 6, 7, 8 and "
                                                r"22 more\); it looks like Le-Wi-Di JSON: read it with --format "
                                                r"lewidi\.$"):
        importers.from_long(path)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_datasets_loader_reads_local_files_in_both_layouts(tmp_path, ext, monkeypatch):
    import datasets

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    long = pd.DataFrame({"example_id": [1, 1, 2], "annotator_id": ["a", "b", "a"], "label": [0.0, 1.0, 1.0],
                         "text": ["t1", "t1", "t2"]})
    wide = pd.DataFrame({"id": ["e1", "e2"], "text": ["t1", "t2"], "a": [0, 1], "b": [1.0, None]})
    paths = tmp_path / f"long.{ext}", tmp_path / f"wide.{ext}"
    for frame, path in zip((long, wide), paths):
        frame.to_csv(path, index=False) if ext == "csv" else frame.to_parquet(path)
    replay = importers.from_datasets(paths[0])
    assert replay.uncollected.values.tolist() == [["1", "a", "0"], ["1", "b", "1"], ["2", "a", "1"]]
    assert replay.classes == ("0", "1")
    replay = importers.from_datasets(paths[1], layout="wide")
    assert replay.uncollected.values.tolist() == [["e1", "a", "0"], ["e1", "b", "1"], ["e2", "a", "1"]]
    assert not cache.exists()  # streamed: no Arrow cache written


def test_a_missing_datasets_column_names_the_keyword_of_from_datasets(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    path = tmp_path / "long.csv"
    pd.DataFrame({"item": [1, 2], "annotator_id": ["a", "b"], "label": [0, 1], "body": ["t1", "t2"]}).to_csv(path)
    with pytest.raises(ImportFormatError, match=r"missing column 'example_id'.*with --example-col \(id_col\)\.$"):
        importers.from_datasets(path)
    with pytest.raises(ImportFormatError, match=r"missing column 'text'.*with --text-cols \(text_col\)\.$"):
        importers.from_datasets(path, id_col="item")
    assert importers.from_datasets(path, id_col="item", text_col="body").classes == ("0", "1")


def test_datasets_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ImportFormatError, match="could not open.*network"):
        importers.from_datasets("someone/no-such-dataset")


# ---------------------------------------------------------------- bad files

def _long_file(tmp_path: Path, body: str, name: str = "a.csv") -> Path:
    path = tmp_path / name
    path.write_text("example_id,annotator_id,label,text\n" + body)
    return path


@pytest.mark.parametrize("body, options, message", [
    ("1,a,0,t\n", {"annotator_col": "worker"},
     r"a\.csv: missing column 'worker' \(found: example_id, annotator_id, label, text\)"),
    ("1,a,0,t\n2,a,2,t\n", {"label_names": {"0": "no", "1": "yes"}},
     r"a\.csv:3: label '2' in column 'label' is not in label_names"),
    ("1,a,0,t\n2,b,1,t\n1,a,1,t\n", {}, r"a\.csv:4: annotator 'a' labels example '1' a second time"),
    (",a,0,t\n", {}, r"a\.csv:2: empty id in column 'example_id'"),
    ("1,a,0,t\n", {}, r"classes \['0'\]; a classifier needs two"),
])
def test_bad_long_files_name_file_line_and_column(tmp_path, body, options, message):
    with pytest.raises(ImportFormatError, match=message):
        importers.from_long(_long_file(tmp_path, body), **options)


@pytest.mark.parametrize("options, message", [
    ({"label_col": "answer"}, r"missing column 'answer' \(found: example_id, annotator_id, label, text\); name the "
                              r"column that holds it with --label-col \(label_col\)\.$"),
    ({"annotator_col": "worker"}, r"missing column 'worker'.*with --annotator-col \(annotator_col\)\.$"),
    ({"text_cols": ("text", "body")}, r"missing column 'body'.*with --text-cols \(text_cols\)\.$"),
    ({"gold_col": "truth"}, r"missing column 'truth'.*with --gold-col \(gold_col\)\.$"),
])
def test_a_missing_long_column_names_the_flag_and_keyword_that_set_it(tmp_path, options, message):
    with pytest.raises(ImportFormatError, match=message):  # was "name the right column in the import options"
        importers.from_long(_long_file(tmp_path, "1,a,0,t\n2,a,1,t\n"), **options)


def test_a_missing_examples_column_names_the_examples_flags(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("key,body\n1,one\n2,two\n")
    ann = _long_file(tmp_path, "1,a,0,t\n2,a,1,t\n")
    with pytest.raises(ImportFormatError, match=r"items\.csv: missing column 'example_id' \(found: key, body\); "
                                                r"name the column that holds it with --examples-id-col"):
        importers.from_long(ann, examples_file=items)
    with pytest.raises(ImportFormatError, match=r"items\.csv: missing column 'text'.*--text-cols \(text_cols\)"):
        importers.from_long(ann, examples_file=items, examples_id_col="key")


def test_a_missing_wide_column_names_the_flag_and_a_fixed_one_says_to_rename_it(tmp_path):
    wide = tmp_path / "w.csv"
    wide.write_text("key,text,a,b\n1,t,0,1\n")
    with pytest.raises(ImportFormatError, match=r"missing column 'id'.*with --example-col \(id_col\)\.$"):
        importers.from_wide(wide)
    with pytest.raises(ImportFormatError, match=r"missing column 'c'.*with --annotator-cols \(annotator_cols\)"):
        importers.from_wide(wide, id_col="key", annotator_cols=["a", "c"])
    folder = _tutorial(tmp_path / "t")
    (folder / "test.csv").write_text("text,gold,id\nthank you,1,t1\n")
    with pytest.raises(ImportFormatError, match=r"test\.csv: missing column 'label' \(found: text, gold, id\); this "
                                                r"format reads the column by that name: rename it in the file"):
        importers.from_tutorial(folder)


def test_every_flag_a_missing_column_names_is_a_reader_flag():
    import argparse

    from crowdloop import simulate_cmd

    sub = argparse.ArgumentParser().add_subparsers()
    simulate_cmd.add_parser(sub)
    for command in ("simulate", "aggregate"):
        flags = set(sub.choices[command]._option_string_actions)
        assert set(import_values.FLAGS.values()) <= flags, command


def test_line_numbers_count_quoted_multi_line_texts(tmp_path):
    path = _long_file(tmp_path, '1,a,0,"two\nlines"\n2,a,1,t\n1,a,1,t\n')
    with pytest.raises(ImportFormatError, match=r"a\.csv:5: annotator 'a'"):
        importers.from_long(path)


def test_duplicate_example_id_in_the_examples_file_names_both_lines(tmp_path):
    ann = _long_file(tmp_path, "1,a,0,t\n2,a,1,t\n")
    items = tmp_path / "items.tsv"
    items.write_text("id\ttext\n1\tone\n2\ttwo\n1.0\tagain\n")
    with pytest.raises(ImportFormatError, match=r"items\.tsv:4: id '1' in column 'id' is repeated \(first at "
                                                r".*items\.tsv:2\)"):
        importers.from_long(ann, examples_file=items, examples_id_col="id")


def test_annotation_for_an_example_missing_from_the_examples_file(tmp_path):
    ann = _long_file(tmp_path, "1,a,0,t\n9,a,1,t\n")
    items = tmp_path / "items.csv"
    items.write_text("example_id,text\n1,one\n")
    with pytest.raises(ImportFormatError, match=r"a\.csv:3: example '9' is not in .*items\.csv"):
        importers.from_long(ann, examples_file=items)


@pytest.mark.parametrize("name, content, message", [
    ("missing.csv", None, "missing.csv: no such file"),
    ("a.xlsx", "x", "unsupported file type '.xlsx'"),
    ("a.jsonl", '{"example_id": 1\n', r"a\.jsonl: cannot parse it as JSONL"),
    ("a.csv", b"\xff\xfe\x00bad", r"a\.csv: cannot parse it as CSV"),
])
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ImportFormatError, match=message):
        importers.from_long(path)


def test_check_replay_rejects_a_test_split_without_gold_and_test_annotations():
    examples = pd.DataFrame({"example_id": ["1", "2"], "text": "t", "split": ["pool", "test"], "gold": ["0", None]})
    pool = pd.DataFrame({"example_id": ["1"], "annotator_id": ["a"], "label": ["1"]})
    with pytest.raises(ImportFormatError, match="a test split needs gold labels"):
        importers.check_replay(Replay(examples, pool.iloc[:0], pool, ("0", "1")))
    examples["gold"] = ["0", "1"]
    importers.check_replay(Replay(examples, pool.iloc[:0], pool, ("0", "1")))
    with pytest.raises(ImportFormatError, match="not in the pool split"):
        importers.check_replay(Replay(examples, pool.iloc[:0], pool.assign(example_id="2"), ("0", "1")))
    with pytest.raises(ImportFormatError, match=r"labels \['2'\] are not among the classes"):
        importers.check_replay(Replay(examples, pool.iloc[:0], pool.assign(label="2"), ("0", "1")))


# ---------------------------------------------------------------- the simulation split

def _unsplit(n: int = 40, per_example: int = 3) -> Replay:
    pool = pd.DataFrame([(str(i), f"w{(i + j) % 7}", str((i + j) % 2)) for i in range(n) for j in range(per_example)],
                        columns=ANSWERS)
    examples = pd.DataFrame({"example_id": [str(i) for i in range(n)], "text": "t", "split": "pool",
                             "gold": [str(i % 2) if i < n - 4 else None for i in range(n)]})
    return Replay(examples, pool.iloc[:0], pool, ("0", "1"))


def test_split_for_simulation_holds_out_gold_test_examples_and_draws_the_start():
    replay = _unsplit()
    split = replay_split.split_for_simulation(replay, seed=3, n_start=10, labels_per_start=2, test_size=0.25)
    test = split.examples[split.examples["split"] == "test"]
    assert len(test) == 9 and test["gold"].notna().all()  # a quarter of the 36 with gold
    assert test["gold"].value_counts().max() - test["gold"].value_counts().min() <= 1  # stratified
    annotated = set(split.initial["example_id"]) | set(split.uncollected["example_id"])
    assert not set(test["example_id"]) & annotated
    assert split.initial.groupby("example_id").size().tolist() == [2] * 10
    assert len(split.initial) + len(split.uncollected) == (40 - 9) * 3
    both = pd.concat([split.initial, split.uncollected])
    assert not both.duplicated(["example_id", "annotator_id"]).any()
    assert set(map(tuple, both.values.tolist())) <= set(map(tuple, replay.uncollected.values.tolist()))


def test_split_for_simulation_is_deterministic_per_seed():
    def draw(seed):
        return replay_split.split_for_simulation(_unsplit(), seed=seed, n_start=10, labels_per_start=2, test_size=8)

    first, again, other = draw(0), draw(0), draw(1)
    assert first.initial.equals(again.initial) and first.examples.equals(again.examples)
    assert not first.initial.equals(other.initial)


def test_split_for_simulation_keeps_a_given_test_split_and_start():
    replay = replay_split.split_for_simulation(_unsplit(), seed=0, n_start=5, labels_per_start=1, test_size=0.2)
    same = replay_split.split_for_simulation(replay, seed=9, n_start=5, labels_per_start=1, test_size=0.5)
    assert same.examples.equals(replay.examples) and same.initial.equals(replay.initial)
    redrawn = replay_split.split_for_simulation(replay, seed=9, n_start=5, labels_per_start=1, redraw_start=True)
    assert len(redrawn.initial) == 5 and len(redrawn.initial) + len(redrawn.uncollected) == len(replay.uncollected) + 5
    assert not redrawn.initial.equals(replay.initial)


@pytest.mark.parametrize("options, message", [
    ({"test_size": None}, "no test split; pass test_size"),
    ({"test_size": 0.25, "n_start": 40}, "only 31 pool examples have 2 annotations"),
])
def test_split_for_simulation_errors(options, message):
    with pytest.raises(ImportFormatError, match=message):
        replay_split.split_for_simulation(_unsplit(), seed=0, **{"n_start": 5, "labels_per_start": 2, **options})


# ---------------------------------------------------------------- the real datasets

@pytest.mark.slow
def test_the_real_datasets_import_with_the_counts_their_readme_gives():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not beside the repository")
    politeness = importers.from_tutorial(SHARED / "politeness", label_names={"0": "impolite", "1": "polite"})
    split = politeness.examples["split"].value_counts().to_dict()
    assert split == {"pool": 1500, "test": 678} and politeness.classes == ("impolite", "polite")
    assert politeness.initial.groupby("example_id").size().value_counts().to_dict() == {2: 100}
    labeled = set(politeness.initial["example_id"])
    per_example = politeness.uncollected.groupby("example_id").size()
    assert per_example[per_example.index.isin(labeled)].eq(3).sum() == 100
    assert per_example[~per_example.index.isin(labeled)].eq(5).sum() == 1400 and len(politeness.uncollected) == 7300

    rte_dir = SHARED / "rte"
    options = dict(examples_file=rte_dir / "rte1.tsv", example_col="orig_id", annotator_col="!amt_worker_ids",
                   label_col="response", examples_id_col="id", text_cols=("text", "hypothesis"))
    rte = importers.from_long(rte_dir / "rte.standardized.tsv", gold_col="gold", **options)
    assert len(rte.examples) == 800 and len(rte.uncollected) == 8000 and rte.uncollected["annotator_id"].nunique() == 164
    assert rte.uncollected.groupby("example_id").size().eq(10).all() and rte.classes == ("0", "1")
    assert rte.examples["gold"].value_counts().to_dict() == {"1": 400, "0": 400}
    # rte1.tsv says TRUE/FALSE where the annotations say 1/0: refused without a mapping, equal with one
    with pytest.raises(ImportFormatError, match="label_names"):
        importers.from_long(rte_dir / "rte.standardized.tsv", examples_gold_col="value", **options)
    mapped = importers.from_long(rte_dir / "rte.standardized.tsv", examples_gold_col="value",
                                 label_names={"TRUE": "1", "FALSE": "0"}, **options)
    assert mapped.examples.equals(rte.examples)


def _lewidi(tmp_path, name, items):
    path = tmp_path / name
    path.write_text(json.dumps(items))
    return path


def _item(text, annotators, annotations, hard):
    return {"text": text, "annotators": annotators, "annotations": annotations, "hard_label": hard,
            "soft_label": {}, "split": "x", "other_info": {}}


def test_lewidi_files_give_a_pool_of_uncollected_answers_and_a_gold_test_split(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    _lewidi(folder, "X_train.json", {"1": _item("hello", "Ann1,Ann2,Ann3", "0,1,1", "1"),
                                     "2": _item({"prev": "hi", "next": "you"}, "Ann1,Ann2", "0,0", "0")})
    _lewidi(folder, "X_dev.json", {"1": _item("again", "Ann2,Ann3", "1,0", "1")})
    _lewidi(folder, "X_test.json", {"1": _item("later", "Ann1,Ann2", "1,1", "1")})
    replay = importers.load("lewidi", folder)
    examples = replay.examples.set_index("example_id")
    assert examples["split"].to_dict() == {"dev-1": "pool", "test-1": "test", "train-1": "pool", "train-2": "pool"}
    assert examples.loc["train-2", "text"] == "hi [SEP] you" and examples.loc["test-1", "gold"] == "1"
    assert replay.initial.empty and replay.classes == ("0", "1")
    assert sorted(map(tuple, replay.uncollected.values.tolist())) == [
        ("dev-1", "Ann2", "1"), ("dev-1", "Ann3", "0"), ("train-1", "Ann1", "0"), ("train-1", "Ann2", "1"),
        ("train-1", "Ann3", "1"), ("train-2", "Ann1", "0"), ("train-2", "Ann2", "0")]
    single = importers.load("lewidi", folder / "X_train.json")
    assert set(single.examples["example_id"]) == {"1", "2"}  # one file: its own ids


def test_lewidi_errors_name_the_file_and_item(tmp_path):
    bad = _lewidi(tmp_path, "bad_train.json", {"7": _item("t", "Ann1,Ann2", "0", "0")})
    with pytest.raises(ImportFormatError, match=r"bad_train.json \(item '7'\): 2 annotators but 1 annotations"):
        importers.load("lewidi", bad)
    with pytest.raises(ImportFormatError, match="no Le-Wi-Di JSON file"):
        importers.load("lewidi", tmp_path / "empty")


def test_a_validation_split_is_carved_from_the_pool_and_the_test_split_left_out():
    replay = _unsplit(n=60, per_example=3)
    examples = replay.examples.assign(split=["test" if i < 10 else "pool" for i in range(60)],
                                      gold=["1" if i < 10 else None for i in range(60)])  # no pool gold
    pool_answers = replay.uncollected[replay.uncollected["example_id"].astype(int) >= 10]
    replay = Replay(examples, replay.initial, pool_answers, replay.classes)
    split = replay_split.split_for_simulation(replay, seed=0, n_start=10, labels_per_start=1, evaluate="validation",
                                              validation_size=0.2)
    evaluation = split.examples[split.examples["split"] == "test"]
    assert len(evaluation) == 10 and not set(evaluation["example_id"]) & set(map(str, range(10)))  # old test gone
    assert len(split.examples) == 50
    answers = pd.concat([split.initial, split.uncollected])
    assert not set(answers["example_id"]) & set(evaluation["example_id"])  # nobody is asked about them
    # their gold is the majority of the answers the dataset held for them
    held = pool_answers[pool_answers["example_id"].isin(evaluation["example_id"])]
    majority = held.groupby("example_id")["label"].agg(lambda s: s.value_counts().idxmax())
    assert evaluation.set_index("example_id")["gold"].to_dict() == majority.to_dict()
    again = replay_split.split_for_simulation(replay, seed=0, n_start=10, labels_per_start=1, evaluate="validation")
    assert again.examples.equals(split.examples)
    with_gold = replay_split.split_for_simulation(_unsplit(n=60), seed=0, n_start=10, labels_per_start=1,
                                                  test_size=0.2, evaluate="validation")
    held_out = with_gold.examples[with_gold.examples["split"] == "test"]
    assert (held_out["gold"] == held_out["example_id"].astype(int).mod(2).astype(str)).all()  # the dataset's gold


def test_pool_examples_without_gold_get_the_majority_of_all_their_answers_as_gold():
    replay = _unsplit(n=40, per_example=3)  # the last 4 examples have no gold
    split = replay_split.split_for_simulation(replay, seed=0, n_start=10, labels_per_start=1, test_size=0.2)
    gold = split.examples.set_index("example_id")["gold"]
    answers = replay.uncollected.groupby("example_id")["label"].agg(lambda s: s.value_counts().idxmax())
    for example in ("36", "37", "38", "39"):
        assert gold[example] == answers[example]  # three answers per example: never a tie
    assert gold["0"] == "0" and gold["1"] == "1"  # the dataset's own gold stays


def test_a_folder_in_the_wrong_format_is_refused_with_the_format_to_name(tmp_path):
    lewidi = tmp_path / "hs"
    lewidi.mkdir()
    (lewidi / "HS_train.json").write_text("{}")
    with pytest.raises(ImportFormatError, match=r"hs: no X_labeled_full\.csv, which the tutorial format .* this "
                                                r"folder holds \.json files: name its format \(--format lewidi"):
        importers.load("tutorial", lewidi)
    with pytest.raises(ImportFormatError, match=r"hs is a folder; this format reads a file \(\.csv"):
        importers.load("long", lewidi)
