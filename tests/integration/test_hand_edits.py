"""A file of data/ changed by hand never leaves the campaign stuck, and nothing typed by hand is lost:
the next writer keeps it under edited/ and puts back what the last commit recorded."""

from __future__ import annotations

import pandas as pd
import pytest

from crowdloop import api, cli
from crowdloop.tasks import config, journal, store, version
from crowdloop.tasks.ingest import ingest_file

pytestmark = [pytest.mark.integration]


def _fill_in(batch_file, n: int, label: str) -> pd.DataFrame:
    """Fill the label of the first ``n`` rows of a batch file where it lies; returns those rows."""
    batch = pd.read_csv(batch_file, dtype=str, keep_default_na=False)
    batch.loc[: n - 1, "label"] = label
    batch.to_csv(batch_file, index=False)
    return batch.iloc[:n]


def test_a_batch_filled_in_where_it_lies_is_ingested_and_put_back(tiny_campaign, capsys):
    camp = tiny_campaign
    api.run_round(camp)
    batch_file = camp.round_dir(1) / "batch.csv"
    recorded = batch_file.read_bytes()
    before = len(store.read_annotations(camp))
    filled = _fill_in(batch_file, 3, "billing")

    assert cli.main(["-C", str(camp.root), "ingest", str(batch_file)]) == 0
    err = capsys.readouterr().err
    assert "data/rounds/001/batch.csv was changed by hand" in err and "your version is edited/" in err
    stored = store.read_annotations(camp)
    assert len(stored) == before + 3
    assert set(stored["example_id"].tail(3)) == set(filled["example_id"])
    assert batch_file.read_bytes() == recorded                          # the store's own batch is back
    (kept,) = (camp.root / version.EDITED).rglob("batch.csv")             # the filled one is kept
    assert (pd.read_csv(kept, dtype=str, keep_default_na=False)["label"] == "billing").sum() == 3
    assert not version.changed_data(camp)
    assert api.verify(camp).findings == []
    assert cli.main(["-C", str(camp.root), "ingest", str(kept)]) == 0  # the kept copy again: nothing new
    assert len(store.read_annotations(camp)) == before + 3


def test_a_campaign_left_stuck_by_an_ingest_from_data_recovers_with_every_answer(tiny_campaign):
    """The state the code before left behind: an ingest from a hand-filled batch in data/ wrote its
    part file and its commit refused the hand-made change; every later command refused too."""
    camp = tiny_campaign
    api.run_round(camp)
    batch_file = camp.round_dir(1) / "batch.csv"
    _fill_in(batch_file, 2, "technical")
    before = len(store.read_annotations(camp))
    journal.start(camp, {"command": "ingest", "pid": 1, "head": version.head(camp), "since": "then", "parts": []})
    cfg = config.load(camp.params_file)
    result = ingest_file(camp, batch_file, classes=cfg.classes, on_change=cfg.ingest.on_change)
    assert len(result.new) == 2 and journal.read(camp)["parts"]

    verified = api.verify(camp)
    assert "committed the 2 annotations an interrupted ingest had stored" in (verified.recovered or "")
    assert verified.findings == []
    assert len(store.read_annotations(camp)) == before + 2
    assert list((camp.root / version.EDITED).rglob("batch.csv"))


def test_a_file_saved_over_or_removed_by_hand_is_put_back_before_a_round(tiny_campaign, capsys):
    camp = tiny_campaign
    api.run_round(camp)
    assignment = sorted((camp.round_dir(1) / "assignments").glob("*.csv"))[0]
    recorded = assignment.read_bytes()
    assignment.write_text("saved over by a spreadsheet\n")
    removed = camp.round_dir(1) / "annotators.csv"
    removed_bytes = removed.read_bytes()
    removed.unlink()
    (camp.data / "notes.txt").write_text("mine\n")

    assert cli.main(["-C", str(camp.root), "round", "--simulate", "--force"]) == 0  # round 1 asked people
    err = capsys.readouterr().err
    assert err.count("was changed by hand") == 3
    assert "data/rounds/001/annotators.csv was changed by hand" in err and "it had been removed" in err
    assert assignment.read_bytes() == recorded and removed.read_bytes() == removed_bytes
    kept = {p.name: p.read_text() for p in (camp.root / version.EDITED).rglob("*") if p.is_file()}
    assert kept[assignment.name] == "saved over by a spreadsheet\n" and kept["notes.txt"] == "mine\n"
    assert not (camp.data / "notes.txt").exists()
    assert store.completed_rounds(camp) == [1, 2]
    assert api.verify(camp).findings == []
