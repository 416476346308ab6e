import pandas as pd
import pytest

from crowdloop.tasks import store


def _rows(pairs, round_=1):
    return pd.DataFrame(
        [{"example_id": e, "annotator_id": a, "label": l, "round": round_, "source": "t", "time": "x"}
         for e, a, l in pairs]
    )


def test_append_writes_new_part_files_and_never_touches_old_ones(tmp_path):
    campaign = store.Campaign(tmp_path)
    first = store.append_annotations(campaign, _rows([("e1", "a1", "x")], 0), source="initial")
    before = first.read_bytes()
    second = store.append_annotations(campaign, _rows([("e2", "a1", "y")]), source="ingest answers.csv")
    assert first != second
    assert first.read_bytes() == before
    stored = store.read_annotations(campaign)
    assert stored["example_id"].tolist() == ["e1", "e2"]
    assert stored["round"].tolist() == [0, 1]


def test_empty_append_writes_nothing(tmp_path):
    campaign = store.Campaign(tmp_path)
    assert store.append_annotations(campaign, _rows([]).iloc[:0], source="x") is None
    assert store.read_annotations(campaign).empty


def test_data_hash_changes_with_any_byte(tmp_path):
    campaign = store.Campaign(tmp_path)
    store.append_annotations(campaign, _rows([("e1", "a1", "x")]), source="s")
    h1 = store.data_hash(campaign)
    assert store.data_hash(campaign) == h1
    store.append_annotations(campaign, _rows([("e1", "a2", "x")]), source="s")
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
    with pytest.raises(store.CampaignError, match="crowdloop init"):
        store.open_campaign(tmp_path)


def test_embedding_cache_round_trip(tmp_path):
    import numpy as np

    campaign = store.Campaign(tmp_path)
    assert store.read_embedding_cache(campaign, "m") == {}
    store.write_embedding_cache(campaign, "m", {"k1": np.ones(3, np.float32)})
    cache = store.read_embedding_cache(campaign, "m")
    assert list(cache) == ["k1"] and cache["k1"].tolist() == [1, 1, 1]
