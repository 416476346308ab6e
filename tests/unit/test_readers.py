"""`crowdloop history` and `status`, which only read: the ids that exist, one line for a file they cannot read."""

from __future__ import annotations

import json

import pytest

from crowdloop import campaign as campaign_mod
from crowdloop import api, cli, history_table
from crowdloop.tasks import demo, journal, version
from crowdloop.tasks.errors import CrowdloopError


@pytest.fixture
def camp(tmp_path):
    data = demo.make_demo(seed=1, n_pool=20, n_test=6, n_initial=6, n_annotators=4, answers_per_example=2)
    return campaign_mod.init_campaign(tmp_path / "c", data.examples, classes=demo.DEMO_CLASSES, initial=data.initial)


def test_a_round_not_yet_committed_shows_no_tag(camp, capsys):
    folder = camp.round_dir(1)  # what a round being saved (or killed before its commit) has written
    folder.mkdir(parents=True)
    (folder / "batch.csv").write_text("example_id,suggested_annotator\n")
    (folder / "metrics.json").write_text(json.dumps({"annotations": 12}))
    (row,) = history_table.rows(camp)
    assert row["round"] == 1 and row["tag"] is None and row["git_commit"] is None  # there is no tag round-001
    assert cli.main(["-C", str(camp.root), "history"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "round-001" not in line and line.split()[:3] == ["1", "-", "-"]


def test_status_of_a_batch_a_spreadsheet_saved_over_is_one_line_not_a_traceback(camp, capsys):
    folder = camp.round_dir(1)
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"annotations": 12}))
    (folder / "batch.csv").write_text("Example ID,Label\nx1,billing\n")  # its header renamed by hand
    assert cli.main(["-C", str(camp.root), "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{folder}: a file cannot be read" in err and "`crowdloop verify` names it" in err


def test_status_that_cannot_read_a_file_while_a_writer_is_at_work_says_to_wait_for_it(camp, held_by):
    folder = camp.round_dir(1)
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"annotations": 12}))  # batch.csv gone: a round discarded as read
    with held_by(camp, "round"), pytest.raises(CrowdloopError) as err:
        api.status(camp)
    assert "being written now by `round`" in str(err.value) and "run `crowdloop status` again" in str(err.value)


def test_status_after_a_round_killed_before_its_commit_says_to_verify_before_sending_its_batch(camp):
    folder = camp.round_dir(1)  # what the killed round had saved
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"annotations": 12, "batch_size": 1}))
    (folder / "batch.csv").write_text("example_id,suggested_annotator\nx1,a01\n")
    journal.start(camp, {"command": "round", "pid": 1, "head": version.head(camp), "since": "2026-12-06T10:00:00+00:00",
                         "parts": [], "round": 1})
    text = str(api.status(camp))
    assert "waiting: 1 of 1 annotations asked in round 1" in text  # what the folder says...
    assert "run `crowdloop verify` before sending round 1's batch out" in text  # ...and why not to trust it yet
    assert "removed round 1" in api.verify(camp).recovered and not folder.exists()


def test_status_shows_the_budget_spent_and_a_cost_key_that_names_nobody(camp):
    from crowdloop.tasks import store

    stored = store.read_annotations(camp)
    first = sorted(stored["annotator_id"].unique())[0]
    assert "  budget" not in str(api.status(camp))  # no budget, no costs: nothing to say
    params = camp.params_file.read_text()
    for key, value in {"annotations": "20", "money": "30"}.items():
        params = params.replace(f"  {key}: null ", f"  {key}: {value} ")
    params = params.replace("  annotator_costs: {} ", f"  annotator_costs: {{{first}: 2.0, exprt1: 3.0}} ")
    camp.params_file.write_text(params)
    money = float((stored["annotator_id"] == first).sum()) * 2.0 + float((stored["annotator_id"] != first).sum())
    text = str(api.status(camp))
    assert (f"budget: {len(stored)} of 20 annotations and {money:g} of 30 money spent by the stored answers; "
            f"{20 - len(stored)} annotations and {30 - money:g} money left") in text
    assert "budget.annotator_costs names 'exprt1', who has given no annotation yet: a typo?" in text
    assert f"'{first}'" not in text  # an annotator who has answered is no typo
    camp.params_file.write_text(params.replace("  annotations: 20 ", f"  annotations: {len(stored)} "))
    assert "spent: a round asks nothing more" in str(api.status(camp))


def test_status_judges_the_stopping_rule_under_the_budget_params_yaml_has_now(camp):
    """Was the verdict round 1 recorded, 'STOP: the annotation budget is spent', after the budget was raised
    (and `crowdloop round` refused to run, though its message says to change the budget)."""
    from crowdloop.tasks import config, gate, store

    stored = len(store.read_annotations(camp))
    folder = camp.round_dir(1)
    folder.mkdir(parents=True)
    (folder / "batch.csv").write_text("example_id,suggested_annotator\n")  # asked nothing: the budget was spent
    (folder / "metrics.json").write_text(json.dumps({
        "annotations": stored, "batch_size": 0, "money_spent": float(stored), "mean_consensus_quality": 0.8,
        "stop": 1, "stable_rounds": 0, "stop_reason": "the annotation budget is spent"}))
    params = camp.params_file.read_text()
    camp.params_file.write_text(params.replace("  annotations: null ", f"  annotations: {stored} "))
    text = str(api.status(camp))
    assert "STOP: the annotation budget is spent\n" in text and "recorded" not in text, text
    assert "the stopping rule fired: `crowdloop round --force` runs another round anyway" in text

    camp.params_file.write_text(params.replace("  annotations: null ", f"  annotations: {stored + 10} "))
    text = str(api.status(camp))
    assert ("): continue: 0 of 3 stable rounds (under params.yaml now; round 1 recorded STOP: the annotation budget "
            "is spent, under the budget and stopping sections it had then)") in text, text
    assert "round 1's batch is answered: `crowdloop round` runs the next one" in text
    state = gate.progress(camp, config.load(camp.params_file))
    assert state.stop_reason is None  # and `crowdloop round` runs without --force
    gate.check_may_run(state, simulate=False, force=False)
