"""`crowdloop labels`: the labeled dataset as it stands, the consensus the next round starts from."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest
import yaml

import crowdloop
from crowdloop import cli, labels_api
from crowdloop.tasks import demo, files, store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_labels_are_every_answer_s_consensus_the_one_the_next_round_starts_from(tmp_path, campaign_factory,
                                                                                    capsys):
    # the tiny model carries no signal: let it into the consensus anyway, so CROWDLAB runs with it
    camp = campaign_factory(tmp_path / "camp", consensus={"require_signal": False})
    crowdloop.run_round(camp, simulate=True)  # round 1's batch is asked and answered: 8 answers after it
    stored = store.read_annotations(camp)
    before = store.data_hash(camp)
    assert cli.main(["-C", str(camp.root), "labels"]) == 0
    line = capsys.readouterr().out
    labeled = stored["example_id"].nunique()
    assert f"{labeled} labeled examples from {len(stored)} annotations -> " in line
    assert "(consensus: crowdlab with round 1's model; 8 annotations came back after the last round)" in line
    assert store.data_hash(camp) == before and not (camp.root / "data" / "rounds" / "002").exists()

    labels = pd.read_csv(camp.root / "exports" / "labels.csv")
    assert list(labels.columns) == ["example_id", "text", "label", "consensus_quality", "annotator_agreement",
                                    "num_annotations", "gold"]
    assert sorted(labels["example_id"]) == sorted(stored["example_id"].unique())
    examples = store.read_examples(camp).set_index("example_id")
    assert (labels["text"] == examples.loc[labels["example_id"], "text"].to_numpy()).all()
    assert (labels["num_annotations"] == stored.groupby("example_id").size().loc[labels["example_id"]].to_numpy()
            ).all()

    # the next round's consensus, from the same answers and round 1's model, is this file
    crowdloop.run_round(camp)
    nxt = files.read_parquet(camp.round_dir(2) / "consensus.parquet").set_index("example_id").loc[labels["example_id"]]
    assert (labels["label"].to_numpy() == nxt["consensus_label"].to_numpy()).all()
    assert labels["consensus_quality"].to_numpy() == pytest.approx(nxt["consensus_quality"].to_numpy())

    for suffix in (".parquet", ".jsonl"):
        other = crowdloop.export_labels(camp, camp.root / f"labels{suffix}")
        read = files.read_parquet(other.path) if suffix == ".parquet" else pd.read_json(other.path, lines=True)
        assert (other.method, other.model_round, other.since_last_round) == ("crowdlab", 2, 0)
        assert len(read) == other.examples and set(read.columns) == set(labels.columns)


def test_texts_are_written_as_stored_and_a_bad_file_name_or_no_answers_writes_nothing(tmp_path, capsys):
    examples = pd.DataFrame({"id": ["e1", "e2", "e3"], "text": ["=SUM(A1:A2) please", "+1 refund", "hello"]})
    answers = pd.DataFrame({"example_id": ["e1", "e1", "e2"], "annotator_id": ["a", "b", "a"],
                            "label": ["spam", "spam", "ham"]})
    camp = crowdloop.init_campaign(tmp_path / "camp", examples, classes=["spam", "ham"], initial=answers)
    done = crowdloop.export_labels(camp)
    assert (done.method, done.model_round, done.examples) == ("majority", None, 2)  # no round yet, no model
    assert done.since_last_round == 0  # the initial answers: no round has run, none came back after one
    assert cli.main(["-C", str(camp.root), "labels"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(consensus: majority)")
    labels = pd.read_csv(done.path)
    assert labels["text"].tolist() == ["=SUM(A1:A2) please", "+1 refund"]  # data, not escaped for spreadsheets
    assert labels["label"].tolist() == ["spam", "ham"] and "gold" not in labels

    # an annotator's changed answer counts as a round counts it (ingest.on_change: latest, the newest)
    params = yaml.safe_load(camp.params_file.read_text())
    params["ingest"]["on_change"] = "latest"
    camp.params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    changed = tmp_path / "changed.csv"
    changed.write_text("example_id,annotator_id,label\ne1,b,ham\ne1,c,ham\n")
    crowdloop.ingest(camp, changed)
    labels = pd.read_csv(crowdloop.export_labels(camp).path).set_index("example_id")
    assert labels.loc["e1", "label"] == "ham" and labels.loc["e1", "num_annotations"] == 3

    assert cli.main(["-C", str(camp.root), "labels", "--out", str(tmp_path / "labels.txt")]) == 2
    assert "write labels to a .csv, .parquet or .jsonl file" in capsys.readouterr().err
    assert not (tmp_path / "labels.txt").exists()
    before = store.data_hash(camp)  # data/ is crowdloop's store: the export never lands there
    assert cli.main(["-C", str(camp.root), "labels", "--out", str(camp.root / "data" / "labels.csv")]) == 2
    assert "inside data/" in capsys.readouterr().err
    assert not (camp.root / "data" / "labels.csv").exists() and store.data_hash(camp) == before
    empty = crowdloop.init_campaign(tmp_path / "empty", examples, classes=["spam", "ham"])
    with pytest.raises(crowdloop.CrowdloopError, match="no annotations are stored yet"):
        crowdloop.export_labels(empty)
    assert not (empty.root / "exports" / "labels.csv").exists()


@pytest.fixture(scope="module")
def rounded(tmp_path_factory, campaign_factory):
    """A campaign after one simulated round: its batch answered, the rest of the pool unannotated."""
    camp = campaign_factory(tmp_path_factory.mktemp("rounded") / "camp")
    crowdloop.run_round(camp, simulate=True)
    return camp


def test_predicted_labels_the_unannotated_pool_by_the_last_round_s_model(rounded, tmp_path, capsys, monkeypatch):
    camp = rounded
    plain = pd.read_csv(crowdloop.export_labels(camp, tmp_path / "plain.csv").path)
    before = store.data_hash(camp)
    assert cli.main(["-C", str(camp.root), "labels", "--predicted", "--out", str(tmp_path / "all.csv")]) == 0
    out = capsys.readouterr().out
    assert store.data_hash(camp) == before
    labels = pd.read_csv(tmp_path / "all.csv")
    assert list(labels.columns) == [*plain.columns[:-1], "source", "predicted_probability", "gold"]

    # the annotated rows are the export without --predicted, word for word
    annotated = labels[labels["source"] == "annotators"].reset_index(drop=True)
    pd.testing.assert_frame_equal(annotated.loc[:, plain.columns], plain)

    # the model rows: every pool example nobody annotated, by the argmax of round 1's probabilities
    probs = store.read_pred_probs(camp, 1)
    examples = store.read_examples(camp)
    pool = set(examples.loc[examples["split"] == "pool", "example_id"])
    unannotated = pool - set(store.read_annotations(camp)["example_id"])
    model = labels[labels["source"] == "model"].set_index("example_id")
    assert len(unannotated) > 0 and set(model.index) == unannotated
    assert (model["label"] == probs.loc[model.index].idxmax(axis=1)).all()
    assert model["predicted_probability"].to_numpy() == pytest.approx(probs.loc[model.index].max(axis=1).to_numpy())
    assert (model["num_annotations"] == 0).all() and model["consensus_quality"].isna().all()
    # on an annotated row: round 1's probability of its consensus label
    row = annotated.iloc[0]
    assert row["predicted_probability"] == pytest.approx(probs.loc[row["example_id"], row["label"]])

    assert f"{len(labels)} rows -> {tmp_path / 'all.csv'}: {len(plain)} from annotators (consensus of " in out
    assert f"{len(model)} from round 1's model" in out and "left out" not in out
    # the tiny random model carries no signal: the summary says its labels are at chance level
    assert store.read_round_metrics(camp, 1)["signal"] == 0
    assert (f"warning: round 1's model carried no signal (no better than chance out of sample): its {len(model)} "
            "predicted labels (source model) are at chance level and should not be trusted") in out

    # a class-weighted model that ranks (ranking_signal) though its probabilities lose to the prior (signal 0):
    # its labels beat chance, so no warning; the consensus still reads signal, so the rows are the same
    stored = store.read_round_metrics(camp, 1)
    monkeypatch.setattr(store, "read_round_metrics", lambda *_: {**stored, "signal": 0, "ranking_signal": 1})
    assert cli.main(["-C", str(camp.root), "labels", "--predicted", "--out", str(tmp_path / "ranked.csv")]) == 0
    assert "warning" not in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ranked.csv"), labels)


def test_pool_examples_added_after_the_last_round_are_left_out_and_counted(rounded, tmp_path):
    camp = store.open_campaign(shutil.copytree(rounded.root, tmp_path / "camp"))
    examples = store.read_examples(camp)
    added = pd.DataFrame({"example_id": ["new1", "new2"], "text": ["fresh one", "fresh two"], "split": "pool",
                          "gold": None})
    store.write_examples(camp, pd.concat([examples, added], ignore_index=True))
    done = crowdloop.export_labels(camp, predicted=True)
    labels = pd.read_csv(done.path)
    unannotated = set(examples.loc[examples["split"] == "pool", "example_id"]) - set(
        store.read_annotations(camp)["example_id"])
    assert set(labels.loc[labels["source"] == "model", "example_id"]) == unannotated
    assert (done.predicted, done.left_out, done.predicted_by) == (len(unannotated), 2, 1)
    assert "2 unannotated pool examples added after round 1 have no prediction and are left out" in \
        labels_api.describe(done)


def test_predicted_is_refused_before_a_round_and_after_one_that_trained_no_model(tmp_path, tiny_model_dir, capsys):
    data = demo.make_demo(seed=3, n_pool=20, n_test=6, n_initial=0, n_annotators=3, answers_per_example=1)
    pool = data.examples.loc[data.examples["split"] == "pool", "example_id"]
    one_class = pd.DataFrame({"example_id": pool.iloc[:3], "annotator_id": "a0", "label": demo.DEMO_CLASSES[0]})
    camp = crowdloop.init_campaign(tmp_path / "camp", data.examples, classes=demo.DEMO_CLASSES, initial=one_class,
                                   params={"model": {"name": str(tiny_model_dir), "backend": "head",
                                                     "max_length": 32}, "select": {"batch_size": 4}})
    out = tmp_path / "labels.csv"
    for why in ("no round has completed yet, so no model has predicted the pool",
                "round 1 trained no model (nothing labeled, or labels of one class), so it predicted no labels"):
        before = store.data_hash(camp)
        assert cli.main(["-C", str(camp.root), "labels", "--predicted", "--out", str(out)]) == 2
        assert why in capsys.readouterr().err
        assert not out.exists() and store.data_hash(camp) == before
        assert cli.main(["-C", str(camp.root), "labels", "--out", str(out)]) == 0  # without it: as before
        out.unlink()
        if why.startswith("no round"):
            crowdloop.run_round(camp)  # labels of one class: no model
    assert store.read_round_metrics(camp, 1)["model_trained"] == 0


def test_the_summary_warns_of_chance_level_labels_only_when_the_model_carried_no_signal(tmp_path):
    done = labels_api.Labels(tmp_path / "labels.csv", 5, 12, "majority", None, 0, predicted_by=3, predicted=7)
    lines = {signal: labels_api.describe(dataclasses.replace(done, model_signal=signal))
             for signal in (True, None, False)}
    assert lines[True] == lines[None] == (f"12 rows -> {tmp_path / 'labels.csv'}: 5 from annotators (consensus of "
                                          "12 annotations: majority), 7 from round 3's model")
    assert lines[False].splitlines()[1].startswith("warning: round 3's model carried no signal")
    assert "7 predicted labels (source model) are at chance level and should not be trusted" in lines[False]
