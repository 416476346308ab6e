"""`crowdloop history`: one line a round, with only the ids that exist."""

from __future__ import annotations

import json

from crowdloop import campaign as campaign_mod
from crowdloop import cli, history_table
from crowdloop.tasks import demo


def test_a_round_not_yet_committed_shows_no_tag(tmp_path, capsys):
    data = demo.make_demo(seed=1, n_pool=20, n_test=6, n_initial=6, n_annotators=4, answers_per_example=2)
    camp = campaign_mod.init_campaign(tmp_path / "c", data.examples, classes=demo.DEMO_CLASSES, initial=data.initial)
    folder = camp.round_dir(1)  # what a round being saved (or killed before its commit) has written
    folder.mkdir(parents=True)
    (folder / "batch.csv").write_text("example_id,suggested_annotator\n")
    (folder / "metrics.json").write_text(json.dumps({"annotations": 12}))
    (row,) = history_table.rows(camp)
    assert row["round"] == 1 and row["tag"] is None and row["git_commit"] is None  # there is no tag round-001
    assert cli.main(["-C", str(camp.root), "history"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "round-001" not in line and line.split()[:3] == ["1", "-", "-"]
