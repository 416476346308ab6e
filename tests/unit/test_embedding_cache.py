"""The embeddings cache: chunk files on disk, found by key, read memory-mapped, never rewritten."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from crowdloop.tasks import embedding_cache
from crowdloop.tasks.embedding_cache import EmbeddingCache, Rows


def _keys(*names) -> np.ndarray:
    return np.array([hashlib.sha256(n.encode()).digest() for n in names], dtype="S32")


def _vectors(n, start=0):
    return np.arange(start, start + n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)


def test_chunks_written_once_are_found_again_by_a_fresh_reader_in_any_order(tmp_path):
    cache = embedding_cache.open_cache(tmp_path, "enc")
    assert len(cache) == 0 and (cache.find(_keys("a")) == -1).all()
    cache.add(_keys("a", "b", "c"), _vectors(3))
    cache.add(_keys("d", "e"), _vectors(2, start=3))
    files = sorted(p.name for p in (tmp_path / "embeddings" / "enc").iterdir())
    assert len(files) == 4 and all(f.endswith((".keys.npy", ".vectors.npy")) for f in files)

    again = embedding_cache.open_cache(tmp_path, "enc")
    assert len(again) == 5
    got = again.get(_keys("e", "a", "d", "a"), dim=3)
    assert got[:, 0].tolist() == [4, 0, 3, 0]
    assert again.find(_keys("b", "zz", "c")).tolist()[1] == -1
    with pytest.raises(KeyError, match="encode those texts first"):
        again.get(_keys("zz"), dim=3)


def test_a_chunk_without_its_keys_file_is_not_there_and_an_old_npz_cache_is_converted(tmp_path):
    cache = embedding_cache.open_cache(tmp_path, "enc")
    cache.add(_keys("a"), _vectors(1))
    for keys_file in (tmp_path / "embeddings" / "enc").glob("*.keys.npy"):
        keys_file.unlink()  # a write killed between the vectors and the keys
    assert len(embedding_cache.open_cache(tmp_path, "enc")) == 0

    # crowdloop before the chunked cache: one npz of hex keys
    old = tmp_path / "embeddings" / "old.npz"
    np.savez(old, keys=np.array([hashlib.sha256(b"x").hexdigest()]), vectors=np.full((1, 3), 7, np.float32))
    converted = embedding_cache.open_cache(tmp_path, "old")
    assert not old.exists() and converted.get(_keys("x"), dim=3).tolist() == [[7, 7, 7]]


def test_keys_that_share_their_first_8_bytes_are_told_apart_and_the_first_copy_wins():
    cache = EmbeddingCache()
    a, b = bytes(8) + b"a" * 24, bytes(8) + b"b" * 24
    cache.add(np.array([a, b], dtype="S32"), _vectors(2))
    cache.add(np.array([b], dtype="S32"), _vectors(1, start=9))  # stored again later
    assert cache.get(np.array([b, a], dtype="S32"), dim=3)[:, 0].tolist() == [1, 0]
    assert cache.find(np.array([bytes(8) + b"c" * 24], dtype="S32")).tolist() == [-1]


def test_rows_are_read_only_when_used():
    cache = EmbeddingCache()
    cache.add(_keys("a", "b", "c"), _vectors(3))
    rows = Rows(cache, _keys("c", "a"), 3)
    assert rows.shape == (2, 3) and len(rows) == 2
    assert np.asarray(rows)[:, 0].tolist() == [2, 0]
    assert rows[1:][:, 0].tolist() == [0] and rows[:, 0].tolist() == [2, 0]
    assert np.vstack([np.zeros((1, 3)), rows]).shape == (3, 3)
