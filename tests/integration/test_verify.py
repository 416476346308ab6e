"""`crowdloop verify` finds what is wrong, one line each, and exits non-zero; a busy campaign is never waited for."""

from __future__ import annotations

import shutil

import pytest

from crowdloop import api, cli
from crowdloop.tasks import store

pytestmark = [pytest.mark.integration]


def test_a_sound_campaign_verifies_and_each_kind_of_damage_is_one_line(tiny_campaign, capsys):
    camp = tiny_campaign
    assert cli.main(["-C", str(camp.root), "verify"]) == 0
    assert "sound" in capsys.readouterr().out

    part = sorted(camp.annotations_dir.glob("*.parquet"))[0]
    shutil.copy(part, camp.annotations_dir / "000-009-copy.parquet")      # every answer stored twice
    (camp.data / "stray.csv").write_text("x\n")                             # a file no commit holds
    (camp.data / ".batch.csv.abc.tmp").write_text("half")                  # an interrupted write
    with (camp.root / "data.dvc").open("a") as dvc_file:                    # a tracked file changed
        dvc_file.write("# edited\n")
    assert cli.main(["-C", str(camp.root), "verify"]) == 1
    # "verify: " lines are notes (here: the campaign was never pushed to its remote), not findings
    lines = [line for line in capsys.readouterr().out.strip().splitlines() if not line.startswith("verify: ")]
    assert any("repeat an answer already stored" in line and "000-009-copy.parquet" in line for line in lines)
    assert any(line.startswith("data/stray.csv: differs from what the last commit recorded") for line in lines)
    assert any(".batch.csv.abc.tmp: a half-written file" in line for line in lines)
    assert any(line.startswith("data.dvc: changed since the last commit") for line in lines)
    assert len(lines) == 6  # also data/annotations/000-009-copy.parquet and the .tmp differ from the commit


def test_verify_reports_a_busy_campaign_at_once(tiny_campaign, held_by):
    with held_by(tiny_campaign, "round"):
        (finding,) = api.verify(tiny_campaign).findings
    assert "busy: `round`" in finding and "run `crowdloop verify` again" in finding
    assert store.read_annotations(tiny_campaign).shape[0] > 0
