"""The pure parts of operating a campaign: the skip decision, the inbox, schedules, config, history."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from pathlib import Path

from crowdloop import deploy, history_table
from crowdloop.tasks import config, gate, inbox, store, track


def _decide(rounds=(1,), asked=8, back=0, min_answered=0.8, force=False, stopped=None):
    state = gate.Progress(rounds[-1] if rounds else None, asked if rounds else 0, back if rounds else 0, stopped)
    return gate.scheduled_decision(state, min_answered=min_answered, force=force)


@pytest.mark.parametrize("kwargs, run, words", [
    ({"rounds": ()}, True, "first round"),
    ({"back": 0}, False, "0 of 8 answers to round 1"),
    ({"back": 6}, False, "6 of 8"),
    ({"back": 7, "min_answered": 0.8}, True, "88%"),
    ({"back": 0, "min_answered": 0.0}, False, "0 of 8"),  # at least one answer, whatever the share
    ({"back": 1, "min_answered": 0.0}, True, "1 of 8"),
    ({"asked": 0}, False, "asked for nothing"),
    ({"back": 0, "force": True}, True, "forced"),
    ({"back": 8, "stopped": "budget spent"}, False, "stopping rule says stop after round 1 (budget spent)"),
    ({"back": 8, "stopped": "budget spent", "force": True}, True, "forced"),
])
def test_a_scheduled_round_runs_only_when_enough_of_the_batch_is_back(kwargs, run, words):
    decision = _decide(**kwargs)
    assert decision.run is run and words in decision.reason


@pytest.mark.parametrize("state, simulate, force, words", [
    (gate.Progress(2, 8, 0), False, False, "round 2's batch (8 annotations"),
    (gate.Progress(2, 8, 1), False, False, None),
    # simulated annotators answer the new batch, so the one waiting for people would be left behind
    (gate.Progress(2, 8, 0), True, False, "has no answers yet: ingest them with `crowdloop ingest FILE`, or pass "
     "--force to run anyway (--simulate answers the new round's batch, not that one)."),
    (gate.Progress(2, 8, 0), True, True, None),
    (gate.Progress(2, 8, 0), False, True, None),
    (gate.Progress(2, 8, 8, "the money budget is spent"), False, False,
     "stopping rule says stop after round 2 (the money budget is spent); change the budget section of params.yaml"),
    (gate.Progress(2, 8, 8, "macro_f1 and consensus quality changed by less than 0.005 for 3 rounds"), False, False,
     "for 3 rounds); change the stopping section of params.yaml, or pass --force"),
    (gate.Progress(2, 8, 8, "the money budget is spent"), False, True, None),
    (gate.Progress(None, 0, 0), False, False, None),
])
def test_a_typed_round_is_refused_while_nothing_is_back_or_after_the_stop(state, simulate, force, words):
    if words is None:
        gate.check_may_run(state, simulate=simulate, force=force)
    else:
        with pytest.raises(gate.CampaignError, match=re.escape(words)):
            gate.check_may_run(state, simulate=simulate, force=force)


def test_answered_counts_requests_of_that_round_whoever_answered():
    batch_ids = pd.Series(["e1", "e2", "e3"])
    annotations = pd.DataFrame({"example_id": ["e1", "e1", "e2", "e3"], "round": [1, 1, 0, 2]})
    assert gate.answered(batch_ids, annotations, 1) == 1  # e2 is from an earlier round, e3 a later one


@pytest.fixture
def campaign(tmp_path):
    """A campaign without git or DVC: params, three pool examples, no annotations yet."""
    made = store.Campaign(tmp_path / "camp")
    made.root.mkdir()
    made.params_file.write_text("classes: [pos, neg]\n")
    store.write_examples(made, pd.DataFrame({"example_id": ["e1", "e2", "e3"], "text": ["a", "b", "c"],
                                             "split": "pool", "gold": None}))
    return made


def _drop(campaign, name, text):
    folder = campaign.root / "inbox"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)


def test_drain_stores_good_files_once_and_rejects_bad_ones_with_their_error(campaign):
    cfg = config.load(campaign.params_file)
    _drop(campaign, "good.csv", "example_id,annotator_id,label\ne1,a1,pos\ne2,a1,\n")
    _drop(campaign, "bad.csv", "example_id,annotator_id,label\ne2,a1,neg\ne9,a1,neg\n")
    _drop(campaign, "notes.xlsx", "not answers")
    _drop(campaign, ".partial.csv", "hidden files are still being written")
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    report = inbox.drain(campaign, cfg, now=now)

    assert report.new == 1 and [Path(i.source).name for i in report.ingested] == ["20260102T030405-good.csv"]
    assert store.read_annotations(campaign)[["example_id", "label"]].values.tolist() == [["e1", "pos"]]
    rejected = {p.name: e for p, e in report.rejected}
    assert set(rejected) == {"20260102T030405-bad.csv", "20260102T030405-notes.xlsx"}
    assert "bad.csv:3" in rejected["20260102T030405-bad.csv"]  # e2 on line 2 was fine: nothing stored
    error_file = campaign.root / "inbox" / "rejected" / "20260102T030405-bad.csv.error.txt"
    assert "e9" in error_file.read_text()
    assert error_file.read_text().endswith(f"(The file is now {error_file.with_suffix('').with_suffix('')}.)\n")
    assert inbox.pending(campaign.root / "inbox") == []
    assert (campaign.root / "inbox" / ".partial.csv").is_file()  # left alone until renamed into place

    # the same answers again, under the same name at the same second: moved aside, nothing stored twice
    _drop(campaign, "good.csv", "example_id,annotator_id,label\ne1,a1,pos\n")
    again = inbox.drain(campaign, cfg, now=now)
    assert again.new == 0 and again.ingested[0].already_stored == 1
    assert Path(again.ingested[0].source).name == "20260102T030405-1-good.csv"
    assert len(store.read_annotations(campaign)) == 1


def test_schedule_options_cron_wins_and_bad_cron_is_a_clear_error():
    base = config.load().schedule
    assert deploy.schedule_options(base, "p") == {"interval": timedelta(minutes=60)}
    cron = type(base)(interval_minutes=5, cron="0 9 * * 1-5", min_answered=0.8, inbox="inbox")
    assert deploy.schedule_options(cron, "p") == {"cron": "0 9 * * 1-5"}
    with pytest.raises(config.ConfigError, match="'schedule.cron' 'every morning' is not a cron line"):
        deploy.schedule_options(type(base)(None, "every morning", 0.8, "inbox"), "p")
    with pytest.raises(config.ConfigError) as err:  # was pydantic's error: four lines, with its web address
        deploy.schedule_options(type(base)(None, "61 * * * *", 0.8, "inbox"), "p")
    assert str(err.value) == "p: 'schedule.cron' '61 * * * *' is not a cron line (Invalid cron string: \"61 * * * *\")."
    with pytest.raises(config.ConfigError, match="set 'schedule.interval_minutes' or 'schedule.cron'"):
        deploy.schedule_options(type(base)(None, None, 0.8, "inbox"), "p")
    assert deploy.describe({"interval": timedelta(minutes=60)}) == "every 60 minutes"
    assert deploy.describe({"interval": timedelta(minutes=0.1)}) == "every 6 s"
    assert deploy.describe({"interval": timedelta(minutes=1)}) == "every minute"  # not 'every 1 minutes'
    assert deploy.describe({"cron": "0 9 * * 1-5"}) == "cron '0 9 * * 1-5'"


def test_tracking_uri_params_then_environment_then_local_store(tmp_path, monkeypatch):
    camp = store.Campaign(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert track.tracking_uri(camp.mlruns) == f"sqlite:///{(tmp_path / 'mlruns' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert track.tracking_uri(camp.mlruns) == "http://127.0.0.1:5000"
    assert track.tracking_uri(camp.mlruns, "http://127.0.0.1:5001") == "http://127.0.0.1:5001"


def test_history_shows_ids_and_the_stop_signal_when_metrics_have_one(campaign, monkeypatch):
    from crowdloop.tasks import version

    for number, stop in ((1, None), (2, 1), (3, 0)):  # metrics.json holds the signal as 0/1
        metrics = {"annotations": 10 * number, "test_accuracy": 0.5 + number / 10, "batch_size": 1}
        if stop is not None:
            metrics.update(stop=stop, krippendorff_alpha=0.4321, flagged_annotators=1)
        store.write_round(campaign, number, batch=pd.DataFrame({"example_id": ["e1"]}), consensus=pd.DataFrame(),
                          annotators=pd.DataFrame(), pred_probs=pd.DataFrame(), metrics=metrics)
    store.write_lineage(campaign, 2, {"mlflow_run_id": "r" * 32, "prefect_flow_run_id": "f" * 36})
    monkeypatch.setattr(version, "commit_of", lambda c, tag: {"round-002": "c" * 40}.get(tag))
    monkeypatch.setattr(version, "data_md5", lambda c, tag: {"round-002": "d" * 32 + ".dir"}.get(tag))
    lines = history_table.render(campaign.root).splitlines()
    assert lines[0].split() == ["round", "tag", "git_commit", "dvc_md5", "mlflow_run_id", "prefect_flow_run_id",
                                "annotations", "test_accuracy", "krippendorff_alpha", "flagged_annotators", "stop"]
    assert lines[1].split() == ["1", "-", "-", "-", "-", "-", "10", "0.600", "-", "-", "-"]
    assert lines[2].split() == ["2", "round-002", "c" * 12, "d" * 12, "r" * 32, "f" * 36, "20", "0.700", "0.432", "1",
                                "yes"]
    assert lines[3].split()[-1] == "no"
