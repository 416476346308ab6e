"""The embeddings cache: vectors in chunk files on disk, read memory-mapped, one folder per encoder.

    <cache>/embeddings/<model_key>/
        <chunk>.vectors.npy    (n, D) float32
        <chunk>.keys.npy       (n,) S32: each vector's text key (models.base.embedding_keys)

A key covers the text and how it was embedded (truncation, pooling), so a text is
encoded once per encoder and setting, in every round that needs it. A chunk is written
once (its vectors, then its keys, each atomically: a chunk without its keys file is not
there) and never changed; new texts go into new chunks. So a first embedding of a million
texts that is interrupted keeps every chunk it finished, and the next run encodes only
the rest. Finding N keys is a binary search over the sorted keys of all chunks (8 bytes
a key in memory); reading vectors maps the chunk files only while it gathers the rows
asked for, so memory stays at what the caller reads, not the cache's size.

Without a folder (``EmbeddingCache()``) the chunks stay in memory (tests, one-off use).
A cache written by an earlier crowdloop (one ``<model_key>.npz``) is converted on first use.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np

from crowdloop.tasks.files import remove, replacing

KEY_DTYPE = "S32"  # a SHA-256 digest


class EmbeddingCache:
    """Text key -> embedding vector (D,), float32; see the module docstring.

    ``folder``: where the chunk files live (created on the first write); None: in memory.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = None if folder is None else Path(folder)
        self._listed: list[tuple[str, np.ndarray]] | None = None  # (name, keys) in name order, once read
        self._memory: dict[str, np.ndarray] = {}  # name -> vectors, when in memory
        self._index = None  # (sorted 8-byte prefixes, their global positions, every key) once built

    @property
    def _chunks(self) -> list[tuple[str, np.ndarray]]:
        if self._listed is None:  # read on first use: opening a cache costs nothing
            files = sorted(self.folder.glob("*.keys.npy")) if self.folder is not None else []
            self._listed = [(f.name[:-len(".keys.npy")], np.load(f)) for f in files]
        return self._listed

    def __len__(self) -> int:
        return sum(len(keys) for _, keys in self._chunks)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Position of each key of ``keys`` (N,) S32 in the cache, -1 where it has none; shape (N,)."""
        keys = np.asarray(keys, dtype=KEY_DTYPE)
        found = np.full(len(keys), -1, dtype=np.int64)
        if not len(keys) or not self._chunks:
            return found
        prefixes, positions, every = self._built_index()
        wanted = _prefix(keys)
        left = np.searchsorted(prefixes, wanted, side="left")
        right = np.searchsorted(prefixes, wanted, side="right")
        single = right - left == 1
        candidate = positions[np.minimum(left, len(positions) - 1)]
        found[single] = np.where(every[candidate[single]] == keys[single], candidate[single], -1)
        for i in np.flatnonzero(right - left > 1):  # two keys share 8 bytes: compare whole keys
            matches = [p for p in positions[left[i]:right[i]] if every[p] == keys[i]]
            found[i] = min(matches) if matches else -1
        return found

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (n, D) under ``keys`` (n,) as a new chunk (durably, when on disk)."""
        keys = np.asarray(keys, dtype=KEY_DTYPE)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(f"got {len(keys)} keys for vectors of shape {vectors.shape}; pass one (D,) vector a key.")
        if not len(keys):
            return
        # A unique, time-ordered name: processes sharing the folder never collide, and the
        # first copy of a key stored twice is the one every reader finds.
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        if self.folder is None:
            self._memory[name] = vectors.copy()
        else:
            _save(self.folder / f"{name}.vectors.npy", vectors)
            _save(self.folder / f"{name}.keys.npy", keys)
        self._chunks.append((name, keys))
        self._index = None

    def vectors(self, positions: np.ndarray, *, dim: int) -> np.ndarray:
        """The vectors at ``positions`` (N,) (from :meth:`find`, none -1), shape (N, dim) float32."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((len(positions), dim), dtype=np.float32)
        if not len(positions):
            return out
        if positions.min() < 0 or positions.max() >= len(self):
            raise KeyError("asked for embeddings the cache does not hold; encode those texts first.")
        starts = np.cumsum([0, *(len(keys) for _, keys in self._chunks)])
        chunk_of = np.searchsorted(starts, positions, side="right") - 1
        for c in np.unique(chunk_of):
            rows = np.flatnonzero(chunk_of == c)
            stored = self._stored_vectors(self._chunks[c][0])
            out[rows] = stored[positions[rows] - starts[c]]
            del stored  # unmaps the file: resident memory stays at what was gathered
        return out

    def get(self, keys: np.ndarray, *, dim: int) -> np.ndarray:
        """The vectors of ``keys`` (N,), shape (N, dim); every key must be stored."""
        return self.vectors(self.find(keys), dim=dim)

    def _stored_vectors(self, name: str) -> np.ndarray:
        if self.folder is None:
            return self._memory[name]
        return np.load(self.folder / f"{name}.vectors.npy", mmap_mode="r")

    def _built_index(self):
        if self._index is None:
            every = np.concatenate([keys for _, keys in self._chunks])
            prefixes = _prefix(every)
            order = np.argsort(prefixes, kind="stable")  # equal prefixes keep chunk order
            self._index = (prefixes[order], order, every)
        return self._index


class Rows:
    """The embeddings of some keys, read from the cache only when used: shape (N, D).

    A round's pool embeddings (a million rows are 1.5 GB) stay on disk until a strategy
    or a diversity option reads them; ``np.asarray(rows)`` gathers them.
    """

    def __init__(self, cache: EmbeddingCache, keys: np.ndarray, dim: int):
        self.cache, self.keys, self.dim = cache, np.asarray(keys, dtype=KEY_DTYPE), int(dim)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.keys), self.dim)

    ndim = 2
    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.keys)

    def __array__(self, dtype=None, copy=None):
        out = self.cache.get(self.keys, dim=self.dim)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, rows):
        if isinstance(rows, tuple):
            return np.asarray(self)[rows]
        return self.cache.get(np.atleast_1d(self.keys[rows]), dim=self.dim)


EMBEDDINGS = "embeddings"  # under the cache folder: one sub-folder per encoder


def folder(cache_dir: Path, model_key: str) -> Path:
    return Path(cache_dir) / EMBEDDINGS / model_key


def open_cache(cache_dir: Path, model_key: str) -> EmbeddingCache:
    """The cache of encoder ``model_key`` under ``cache_dir`` (a campaign's or simulation's ``.cache``)."""
    where = folder(cache_dir, model_key)
    old = Path(cache_dir) / EMBEDDINGS / f"{model_key}.npz"
    cache = EmbeddingCache(where)
    if old.is_file():  # written by crowdloop before the chunked cache: hex keys, one file
        with np.load(old) as stored:
            keys = np.array([bytes.fromhex(k) for k in stored["keys"].tolist()], dtype=KEY_DTYPE)
            if len(keys):
                cache.add(keys, stored["vectors"])
        remove(old)
    return cache


def _prefix(keys: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each S32 key as an integer (N,): what the index sorts and searches."""
    return np.ascontiguousarray(keys).view(np.uint8).reshape(len(keys), 32)[:, :8].copy().view(">u8").ravel()


def _save(path: Path, array: np.ndarray) -> None:
    with replacing(path) as tmp:
        with tmp.open("wb") as handle:
            np.save(handle, array)
