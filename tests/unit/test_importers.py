"""Importers on small generated files of each format; the real datasets only in a slow test."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks import importers
from crowdloop.tasks.importers import ImportFormatError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def _tutorial(folder: Path, *, extra_json=True, extra_npy=False):
    folder.mkdir()
    pd.DataFrame({"id": ["e1", "e2"], "text": ["hi", "yo"], "a1": [1.0, None], "a2": [0.0, 1.0],
                  "a3": [None, 1.0]}).to_csv(folder / "X_labeled_full.csv", index=False)
    pd.DataFrame({"id": ["0e12", "u2"], "text": ["x", "y"]}).to_csv(folder / "X_unlabeled.csv", index=False)
    pd.DataFrame({"text": ["t1", "t2"], "a1": [1, 0], "label": [1, 0], "id": ["e1", "t2"]}).to_csv(
        folder / "test.csv", index=False)
    extra = {"e1": {"a4": 1}, "0e12": {"a1": 0, "a2": 1}, "u2": {"a3": 1}}
    if extra_json:
        (folder / "extra_annotations.json").write_text(json.dumps(extra))
    if extra_npy:
        np.save(folder / "extra_annotations.npy", np.array(extra, dtype=object), allow_pickle=True)
    return folder


def test_tutorial_files(tmp_path):
    replay = importers.from_tutorial(_tutorial(tmp_path / "t"), label_names={"0": "rude", "1": "polite"})
    assert replay.classes == ("rude", "polite")
    assert sorted(map(tuple, replay.initial.values.tolist())) == [
        ("e1", "a1", "polite"), ("e1", "a2", "rude"), ("e2", "a2", "polite"), ("e2", "a3", "polite")]
    assert len(replay.pool) == 4 and "0e12" in set(replay.pool["example_id"])  # hex-looking ids stay ids
    test = replay.examples[replay.examples["split"] == "test"]
    assert test["gold"].tolist() == ["polite", "rude"]
    assert set(test["example_id"]) == {"test-e1", "test-t2"}  # kept apart from training ids


def test_pickled_pool_needs_explicit_consent(tmp_path):
    folder = _tutorial(tmp_path / "t", extra_json=False, extra_npy=True)
    with pytest.raises(ImportFormatError, match="allow-pickle"):
        importers.from_tutorial(folder)
    with pytest.warns(UserWarning, match="runs code"):
        replay = importers.from_tutorial(folder, allow_pickle=True)
    assert len(replay.pool) == 4


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl"])
def test_long_format_with_two_text_columns_and_float_labels(tmp_path, ext):
    rows = pd.DataFrame({"item": ["1", "1", "2", "2", "3"], "worker": ["w1", "w2", "w1", "w3", "w2"],
                         "response": ["1.0", "0", "1", "1.0", "0.0"], "gold": ["1", "1", "1", "1", "0"]})
    items = pd.DataFrame({"id": ["1", "2", "3"], "premise": ["a", "b", "c"], "hyp": ["x", "y", "z"]})
    path, examples = tmp_path / f"ann.{ext}", tmp_path / f"items.{ext}"
    if ext == "jsonl":
        rows.to_json(path, orient="records", lines=True)
        items.to_json(examples, orient="records", lines=True)
    else:
        rows.to_csv(path, sep="\t" if ext == "tsv" else ",", index=False)
        items.to_csv(examples, sep="\t" if ext == "tsv" else ",", index=False)
    replay = importers.from_long(path, examples_file=examples, example_col="item", annotator_col="worker",
                                 label_col="response", gold_col="gold", examples_id_col="id",
                                 text_cols=("premise", "hyp"), text_sep=" | ")
    assert replay.classes == ("0", "1")
    assert replay.pool["label"].tolist() == ["1", "0", "1", "1", "0"]
    assert replay.examples.set_index("example_id").loc["2", "text"] == "b | y"
    assert replay.examples["gold"].tolist() == ["1", "1", "0"]
    assert replay.initial.empty


def test_conflicting_gold_is_an_error(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame({"example_id": ["1", "1"], "annotator_id": ["a", "b"], "label": ["0", "1"], "text": ["t", "t"],
                  "gold": ["0", "1"]}).to_csv(path, index=False)
    with pytest.raises(ImportFormatError, match="conflicting"):
        importers.from_long(path, gold_col="gold")


def test_wide_format(tmp_path):
    path = tmp_path / "wide.csv"
    pd.DataFrame({"id": ["e1", "e2"], "text": ["a", "b"], "ann_x": ["cat", ""], "ann_y": ["dog", "dog"]}).to_csv(
        path, index=False)
    replay = importers.from_wide(path)
    assert replay.classes == ("cat", "dog")
    assert sorted(map(tuple, replay.pool.values.tolist())) == [("e1", "ann_x", "cat"), ("e1", "ann_y", "dog"),
                                                             ("e2", "ann_y", "dog")]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_datasets_loader_on_local_files(tmp_path, ext):
    frame = pd.DataFrame({"example_id": ["1", "1", "2"], "annotator_id": ["a", "b", "a"], "label": [0, 1, 1],
                          "text": ["t1", "t1", "t2"]})
    path = tmp_path / f"d.{ext}"
    frame.to_csv(path, index=False) if ext == "csv" else frame.to_parquet(path)
    replay = importers.from_datasets(path)
    assert len(replay.pool) == 3 and replay.classes == ("0", "1")


def test_datasets_loader_offline_hub_id_is_a_clear_error():
    with pytest.raises(ImportFormatError, match="load_dataset could not open"):
        importers.from_datasets("someone/not-a-dataset-offline")


@pytest.mark.parametrize("problem, match", [
    ("missing", "no such file"), ("column", "missing column 'worker'"), ("names", "not in label_names")])
def test_bad_files(tmp_path, problem, match):
    path = tmp_path / "a.csv"
    if problem != "missing":
        pd.DataFrame({"example_id": ["1"], "annotator_id": ["a"], "label": ["2"], "text": ["t"]}).to_csv(
            path, index=False)
    kwargs = {"annotator_col": "worker"} if problem == "column" else {}
    if problem == "names":
        kwargs = {"label_names": {"0": "no", "1": "yes"}}
    with pytest.raises(ImportFormatError, match=match) as err:
        importers.from_long(path, **kwargs)
    assert "a.csv" in str(err.value)


def test_split_for_simulation_holds_out_test_and_draws_the_start():
    n = 40
    pool = pd.DataFrame([(str(i), f"w{j}", str(i % 2)) for i in range(n) for j in range(3)],
                        columns=["example_id", "annotator_id", "label"])
    examples = pd.DataFrame({"example_id": [str(i) for i in range(n)], "text": "t", "split": "pool",
                             "gold": [str(i % 2) for i in range(n)]})
    replay = importers.Replay(examples, pd.DataFrame(columns=["example_id", "annotator_id", "label"]), pool,
                              ("0", "1"))
    split = importers.split_for_simulation(replay, seed=3, n_start=10, labels_per_start=2, test_size=0.25)
    test_ids = set(split.examples.loc[split.examples["split"] == "test", "example_id"])
    assert len(test_ids) == 10
    assert not test_ids & set(split.pool["example_id"]) and not test_ids & set(split.initial["example_id"])
    assert split.initial.groupby("example_id").size().tolist() == [2] * 10
    assert len(split.initial) + len(split.pool) == 30 * 3
    again = importers.split_for_simulation(replay, seed=3, n_start=10, labels_per_start=2, test_size=0.25)
    assert again.initial.equals(split.initial)


@pytest.mark.slow
def test_the_real_datasets_import_with_the_counts_their_readme_gives():
    if not SHARED.is_dir():
        pytest.skip("../shared/datasets is not beside the repository")
    politeness = importers.from_tutorial(SHARED / "politeness")
    assert (politeness.examples["split"] == "test").sum() == 678
    assert politeness.initial.groupby("example_id").size().eq(2).all() and len(politeness.initial) == 200
    assert len(politeness.examples) - 678 == 1500
    assert politeness.pool.groupby("example_id").size().value_counts().to_dict() == {5: 1400, 3: 100}
    rte = importers.from_long(SHARED / "rte" / "rte.standardized.tsv", examples_file=SHARED / "rte" / "rte1.tsv",
                              example_col="orig_id", annotator_col="!amt_worker_ids", label_col="response",
                              gold_col="gold", examples_id_col="id", text_cols=("text", "hypothesis"))
    assert len(rte.examples) == 800 and len(rte.pool) == 8000 and rte.pool["annotator_id"].nunique() == 164
    assert rte.examples["gold"].value_counts().to_dict() == {"1": 400, "0": 400}
