"""Counts in what crowdloop prints agree in number: 1 annotation, 2 annotations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crowdloop.answers_cmd import summary
from crowdloop.integrity import Verified
from crowdloop.tasks import store
from crowdloop.tasks.answer_checks import Ingested
from crowdloop.tasks.ingest import commit_message, parts_message
from crowdloop.tasks.stopping import Spend, decide
from crowdloop.tasks.wording import count, word


@pytest.mark.parametrize("n,text", [(0, "0 rounds"), (1, "1 round"), (2, "2 rounds")])
def test_count_agrees_with_its_number(n, text):
    assert count(n, "round") == text
    assert word(n, "fails", "fail") == ("fails" if n == 1 else "fail")


def _ingested(new: int, unanswered: int, repeated: int = 0, skipped: int = 0) -> Ingested:
    rows = pd.DataFrame({"example_id": [f"e{i}" for i in range(new)], "annotator_id": "a", "label": "x"})
    return Ingested(source="a.csv", new=rows, already_stored=1, unanswered=unanswered, repeated=repeated,
                    skipped=skipped, round=0)


def test_the_ingest_summary_and_commit_message_say_1_annotation_and_2_annotations():
    one = summary(Path("a.csv"), _ingested(1, 1, repeated=1, skipped=1))
    assert one.startswith("a.csv: 1 new annotation stored for round 0; 1 already stored, 1 row without a label")
    assert "1 row repeats" in one and "Label Studio annotations not stored: 1 skipped (cancelled), 0 empty" in one
    two = summary(Path("a.csv"), _ingested(2, 2))
    assert "2 new annotations stored" in two and "2 rows without a label" in two
    assert commit_message([_ingested(1, 0)]) == "Ingest 1 annotation from a.csv (round 0)"
    assert parts_message([{"source": "a.csv", "rows": 1, "round": 0}, {"source": "b.csv", "rows": 2, "round": 1}]) \
        == "Ingest 3 annotations from a.csv, b.csv (rounds 0, 1)"


def test_verify_counts_one_round_as_a_round(tmp_path):
    line = str(Verified(store.Campaign(tmp_path), annotations=1, rounds=1))
    assert line.endswith(": sound (1 annotation, 1 round; store, git, DVC and MLflow agree)")
    assert "(2 annotations, 0 rounds;" in str(Verified(store.Campaign(tmp_path), annotations=2, rounds=0))


def test_the_stopping_rule_says_1_round():
    history = [{"test_accuracy": a, "mean_consensus_quality": 0.5} for a in (0.6, 0.8, 0.8)]
    decision = decide(history, Spend(annotations=100, money=100.0), epsilon=0.005, rounds=1, metric="accuracy")
    assert decision.stop and decision.reason.endswith("for 1 round")
