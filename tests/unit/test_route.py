"""Routing helpers: per-annotator assignment tables and safe file names."""

from __future__ import annotations

import pandas as pd

from crowdloop.tasks.files import file_stem
from crowdloop.tasks.route import ANYONE, assignments


def test_one_assignment_table_per_annotator_in_batch_order():
    batch = pd.DataFrame({"example_id": ["e1", "e2", "e3", "e4"],
                          "suggested_annotator": ["bob", "ann", "bob", ANYONE]})
    tables = assignments(batch)
    assert sorted(tables) == ["ann", "bob", "unassigned"]
    assert tables["bob"]["example_id"].tolist() == ["e1", "e3"]
    assert sum(len(t) for t in tables.values()) == len(batch)


def test_file_stems_are_safe_and_do_not_clash():
    assert file_stem("a12") == "a12"
    assert "/" not in file_stem("team/a") and file_stem("team/a") != file_stem("team_a")
    assert file_stem("..") != ""
