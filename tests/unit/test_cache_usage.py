"""`crowdloop status`'s cache lines: the size of .cache/, and embeddings of an encoder no kept round reads."""

from __future__ import annotations

import json

from crowdloop.tasks import cache_usage


def _write(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_an_encoder_no_kept_round_reads_is_named_with_its_size_and_nothing_is_deleted(tmp_path):
    cache = tmp_path / ".cache"
    _write(cache / "embeddings" / "minilm" / "c0.vectors.npy", 3 << 20)
    _write(cache / "embeddings" / "old" / "c0.vectors.npy", 5 << 20)
    _write(cache / "plans" / "p.pkl", 1 << 10)
    (cache / "predictions" / "k1").mkdir(parents=True)
    (cache / "predictions" / "k1" / "meta.json").write_text(json.dumps(
        {"key": "k1", "rows": {"embeddings_unlabeled": {"encoder": "minilm", "dim": 384}}}))
    used = cache_usage.usage(cache)
    assert used.encoders == {"minilm": 3 << 20, "old": 5 << 20} and used.in_use == {"minilm"}
    assert used.unread == {"old": 5 << 20}
    lines = cache_usage.describe(used)
    assert lines[0].startswith("  cache: 8.0 MB in .cache/ (rebuilt as rounds need it")
    assert len(lines) == 2 and lines[1].startswith("  cache: .cache/embeddings/old (5.0 MB) holds the embeddings of an "
                                                   "encoder no kept round uses")
    assert (cache / "embeddings" / "old" / "c0.vectors.npy").is_file()


def test_without_kept_predictions_no_encoder_is_called_unused_and_an_empty_cache_says_nothing(tmp_path):
    cache = tmp_path / ".cache"
    assert cache_usage.describe(cache_usage.usage(cache)) == []
    _write(cache / "embeddings" / "a" / "c0.keys.npy", 10)
    (cache / "predictions" / "broken").mkdir(parents=True)
    (cache / "predictions" / "broken" / "meta.json").write_text("{not json")
    used = cache_usage.usage(cache)
    assert used.unread == {} and cache_usage.describe(used) == ["  cache: 19 B in .cache/ (rebuilt as rounds need it; "
                                                                "deleting it costs time, not data)"]
