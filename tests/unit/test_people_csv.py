"""CSVs people open in spreadsheets carry no formula, and read back exactly as they were."""

from __future__ import annotations

import pandas as pd
import pytest

from crowdloop.tasks import ingest, store
from crowdloop.tasks.files import escape_formula, people_csv, unescape_formula

TRICKY = ["=1+1", "+cmd", "-5", "@SUM(A1)", "\tx", "'abc", "'=x", "''", "'", "plain", "a=b", ""]


@pytest.mark.parametrize("cell", TRICKY)
def test_escaping_is_undone_exactly_and_only_where_it_was_added(cell):
    written = escape_formula(cell)
    assert unescape_formula(written) == cell
    assert written[:1] not in ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet shows it as text


def test_an_id_that_really_starts_with_an_apostrophe_is_left_alone():
    assert escape_formula("'abc") == "'abc" and unescape_formula("'abc") == "'abc"
    assert escape_formula("'=x") == "''=x"  # would read back as "=x" otherwise


def test_numbers_stay_numbers():
    text = people_csv(pd.DataFrame({"example_id": ["-5"], "score": [-0.25], "cost": [-1]}))
    assert text.splitlines()[1] == "'-5,-0.25,-1"


def _formula(cell: str) -> bool:
    """Would a spreadsheet run this cell? (a number such as -0.5 is a number)"""
    try:
        float(cell)
        return False
    except ValueError:
        return cell[:1] in ("=", "+", "-", "@", "\t", "\r")


def _write_round(camp, batch, annotators):
    store.write_round(camp, 1, batch=batch, consensus=pd.DataFrame({"label": []}, index=pd.Index([], name="example_id")),
                      annotators=annotators, metrics={"batch_size": len(batch)},
                      pred_probs=pd.DataFrame(index=pd.Index([], name="example_id")),
                      assignments={a: batch[batch["suggested_annotator"] == a] for a in batch["suggested_annotator"]},
                      unroutable=["=evil", "'ok"])


def test_every_csv_a_round_writes_for_people_is_escaped_and_the_batch_reads_back_and_ingests(tmp_path):
    camp = store.Campaign(tmp_path / "camp")
    ids = ["=1+1", "-5", "'abc", "'=x", "@x", "plain"]
    store.write_examples(camp, pd.DataFrame({"example_id": ids, "text": [f"+t{i}" for i in range(6)],
                                             "split": "pool", "gold": None}))
    batch = pd.DataFrame({"example_id": ids, "text": [f"+t{i}" for i in range(6)],
                          "suggested_annotator": ["=ann", "-b", "=ann", "-b", "=ann", "-b"], "score": -0.5,
                          "cost": 1.0, "label": None})
    _write_round(camp, batch, pd.DataFrame({"annotator_id": ["=ann", "-b"], "quality": [0.9, 0.8]}))
    folder = camp.round_dir(1)
    written = [folder / "batch.csv", folder / "unroutable.csv", folder / "annotators.csv",
               *sorted((folder / "assignments").glob("*.csv"))]
    assert len(written) == 5
    for path in written:
        for row in pd.read_csv(path, dtype=str, keep_default_na=False).itertuples(index=False):
            assert not any(_formula(cell) for cell in row), (path, row)
    assert store.read_batch(camp, 1)["example_id"].tolist() == ids
    assert store.read_batch(camp, 1)["suggested_annotator"].tolist() == batch["suggested_annotator"].tolist()

    # people fill in the label column of the escaped batch.csv and send it back
    filled = (folder / "batch.csv").read_text().splitlines()
    answers = tmp_path / "answers.csv"
    answers.write_text("\n".join([filled[0], *[line + "billing" for line in filled[1:]]]) + "\n")
    result = ingest.ingest_file(camp, answers, classes=("billing", "technical"), on_change="reject")
    assert result.new["example_id"].tolist() == ids
    assert result.new["annotator_id"].tolist() == batch["suggested_annotator"].tolist()
