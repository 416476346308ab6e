"""`crowdloop labels`: the labeled dataset as it stands, the consensus the next round starts from."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import crowdloop
from crowdloop import cli
from crowdloop.tasks import store

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
    nxt = pd.read_parquet(camp.round_dir(2) / "consensus.parquet").set_index("example_id").loc[labels["example_id"]]
    assert (labels["label"].to_numpy() == nxt["consensus_label"].to_numpy()).all()
    assert labels["consensus_quality"].to_numpy() == pytest.approx(nxt["consensus_quality"].to_numpy())

    for suffix in (".parquet", ".jsonl"):
        other = crowdloop.export_labels(camp, camp.root / f"labels{suffix}")
        read = pd.read_parquet(other.path) if suffix == ".parquet" else pd.read_json(other.path, lines=True)
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
