"""The campaign store: annotation part files, rounds, the data hash, the embeddings cache."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from crowdloop.tasks import store
from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.schema import ANNOTATION_COLUMNS


def _rows(pairs):
    return pd.DataFrame(pairs, columns=["example_id", "annotator_id", "label"])


def test_append_stamps_rows_writes_new_part_files_and_never_touches_old_ones(tmp_path):
    campaign = store.Campaign(tmp_path)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    first = store.append_annotations(campaign, _rows([("e1", "a1", "x")]), round=0, source="initial", now=now)
    before = first.read_bytes()
    second = store.append_annotations(campaign, _rows([("e2", "a1", "y")]), round=1, source="ingest:answers.csv")
    assert first.name == "000-000-initial.parquet" and second.name == "001-001-ingest-answers-csv.parquet"
    assert first.read_bytes() == before
    stored = store.read_annotations(campaign)
    assert list(stored.columns) == list(ANNOTATION_COLUMNS)
    assert stored["example_id"].tolist() == ["e1", "e2"]
    assert stored["round"].tolist() == [0, 1]
    assert stored["source"].tolist() == ["initial", "ingest:answers.csv"]
    assert stored["time"].iloc[0] == "2026-01-02T03:04:05+00:00"


def test_empty_append_writes_nothing(tmp_path):
    campaign = store.Campaign(tmp_path)
    assert store.append_annotations(campaign, _rows([]), round=1, source="x") is None
    assert store.read_annotations(campaign).empty


def test_data_hash_changes_with_any_byte(tmp_path):
    campaign = store.Campaign(tmp_path)
    store.append_annotations(campaign, _rows([("e1", "a1", "x")]), round=1, source="s")
    h1 = store.data_hash(campaign)
    assert store.data_hash(campaign) == h1
    store.append_annotations(campaign, _rows([("e1", "a2", "x")]), round=1, source="s")
    assert store.data_hash(campaign) != h1


def test_round_is_complete_only_once_its_metrics_exist(tmp_path):
    campaign = store.Campaign(tmp_path)
    empty = pd.DataFrame({"a": [1]})
    store.write_round(campaign, 1, batch=empty, consensus=empty, annotators=empty,
                      pred_probs=pd.DataFrame({"p": [0.5]}, index=pd.Index(["e"], name="example_id")),
                      metrics={"test_accuracy": 0.5})
    (campaign.round_dir(2)).mkdir(parents=True)
    assert store.completed_rounds(campaign) == [1]
    assert store.read_round_metrics(campaign, 1) == {"test_accuracy": 0.5}
    assert store.read_pred_probs(campaign, 1).loc["e", "p"] == 0.5
    assert store.read_pred_probs(campaign, 5) is None


def test_open_campaign_explains_what_to_do(tmp_path):
    with pytest.raises(CampaignError, match="crowdloop init"):
        store.open_campaign(tmp_path)


def test_a_batch_and_its_annotators_read_back_ids_exactly_as_written(tmp_path):
    campaign = store.Campaign(tmp_path / "camp")
    ids = ["NA", "007", "1.0", "null", "nan"]
    folder = campaign.round_dir(1)
    folder.mkdir(parents=True)
    (folder / "batch.csv").write_text(store.people_csv(pd.DataFrame({
        "example_id": ids, "text": "t", "suggested_annotator": ["None", "a1", "NaN", "a2", "a3"], "score": 0.5,
        "cost": 1.0, "label": None})))
    (folder / "annotators.csv").write_text(store.people_csv(pd.DataFrame({"annotator_id": ["NA", "007"],
                                                                          "quality": [0.5, 0.9]})))
    batch = store.read_batch(campaign, 1)
    assert batch["example_id"].tolist() == ids
    assert batch["suggested_annotator"].tolist() == ["None", "a1", "NaN", "a2", "a3"]
    assert batch["label"].isna().all()  # an unanswered cell is still missing, not ''
    assert store.read_annotators(campaign, 1)["annotator_id"].tolist() == ["NA", "007"]
