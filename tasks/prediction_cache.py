"""A round's predictions on disk, one folder per training key, every array read memory-mapped.

    <cache>/predictions/<key[:16]>/
        meta.json                     the key, the scalars (backend, seconds, ...), what each array is
        <field>.npy                   each array field of train.Predictions
        embeddings_unlabeled.keys.npy the pool's embeddings as keys of the embedding cache (head)

The train step writes into ``<key[:16]>.<random>.tmp/`` (the pool's arrays are filled
there as memory-mapped files, chunk by chunk) and renames it into place when every file
is on disk, so a folder under its final name is whole; reading it maps the files, so a
million-row pool costs no memory until a step reads it. Only the newest
:data:`KEPT` folders are kept, and the exported models (:func:`model_folder`) of those.
Nothing here knows what the arrays mean: the caller turns the fields into a
``train.Predictions``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from crowdloop.tasks.embedding_cache import Rows, open_cache
from crowdloop.tasks.files import TMP_SUFFIX, fsync, write_text_atomic

KEPT = 4  # prediction folders kept (newest first): a rollback and re-run within them trains nothing


PREDICTIONS, MODELS = "predictions", "models"  # under the cache folder: one sub-folder per training key each


def folder(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / PREDICTIONS / key[:16]


def model_folder(cache_dir: Path, key: str) -> Path:
    """Where the train step exports the model behind ``key``'s predictions (``models/<key[:16]>``):
    it goes when they are pruned (a fine-tuned MiniLM is 90 MB; MLflow keeps every round's copy)."""
    return Path(cache_dir) / MODELS / key[:16]


class Writer:
    """Collects one key's predictions in a temporary folder; :meth:`finish` moves it into place."""

    def __init__(self, cache_dir: Path, key: str):
        self.cache_dir, self.key = Path(cache_dir), key
        self.final = folder(cache_dir, key)
        self.tmp = self.final.with_name(f"{self.final.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
        self.tmp.mkdir(parents=True)
        self.mapped: dict[str, np.memmap] = {}

    def allocate(self, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
        """A zeroed array of ``shape`` backed by ``<name>.npy`` (pool.Allocate)."""
        self.mapped[name] = np.lib.format.open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=dtype,
                                                      shape=tuple(shape))
        return self.mapped[name]

    def finish(self, fields: dict[str, Any], *, embedding_key: str | None = None) -> Path:
        """Write ``fields`` (arrays, embedding_cache.Rows, None, or JSON-able scalars) and move the
        folder into place; ``embedding_key``: the encoder whose cache holds the Rows. Returns it."""
        meta = {"key": self.key, "scalars": {}, "arrays": {}, "rows": {}, "same_as": {}}
        written: dict[int, str] = {}
        for name, value in fields.items():
            if isinstance(value, Rows):
                _save(self.tmp / f"{name}.keys.npy", value.keys)
                meta["rows"][name] = {"encoder": embedding_key, "dim": value.dim}
            elif isinstance(value, np.ndarray):
                if id(value) in written:  # one array under two names (the head's posterior is its folds)
                    meta["same_as"][name] = written[id(value)]
                    continue
                written[id(value)] = name
                if value is self.mapped.get(name):
                    value.flush()
                    fsync(self.tmp / f"{name}.npy")
                else:
                    _save(self.tmp / f"{name}.npy", value)
                meta["arrays"][name] = f"{name}.npy"
            else:
                meta["scalars"][name] = value
        self.mapped.clear()
        write_text_atomic(self.tmp / "meta.json", json.dumps(meta, indent=1, default=str))
        if self.final.exists():  # the same key written before (a cache older than its Prefect result)
            shutil.rmtree(self.final)
        self.tmp.rename(self.final)
        fsync(self.final.parent)
        _prune(self.cache_dir)
        return self.final

    def discard(self) -> None:
        self.mapped.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


def load(cache_dir: Path, key: str) -> dict[str, Any] | None:
    """The fields :meth:`Writer.finish` stored for ``key``, arrays memory-mapped (copy-on-write:
    a step that changes one changes only its own copy); None when there are none."""
    where = folder(cache_dir, key)
    meta = _meta(where, key)
    if meta is None:
        return None
    fields = dict(meta["scalars"])
    for name, file in meta["arrays"].items():
        fields[name] = np.load(where / file, mmap_mode="c")
    for name, other in meta["same_as"].items():
        fields[name] = fields[other]
    for name, rows in meta["rows"].items():
        fields[name] = Rows(open_cache(cache_dir, rows["encoder"]), np.load(where / f"{name}.keys.npy"), rows["dim"])
    return fields


def exists(cache_dir: Path, key: str) -> bool:
    """Whether predictions are stored for ``key`` (reads their meta.json only)."""
    return _meta(folder(cache_dir, key), key) is not None


def encoders(cache_dir: Path) -> set[str]:
    """The encoders whose embeddings cache the kept prediction folders read (their rows)."""
    found = set()
    for meta in (Path(cache_dir) / PREDICTIONS).glob("*/meta.json"):
        try:
            rows = json.loads(meta.read_text()).get("rows", {})
        except (OSError, ValueError):
            continue
        found.update(r["encoder"] for r in rows.values() if isinstance(r, dict) and r.get("encoder"))
    return found


def _meta(where: Path, key: str) -> dict | None:
    """The meta.json of a whole folder written for ``key``; None: none (or another key's)."""
    try:
        meta = json.loads((where / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("key") == key else None


def _prune(cache_dir: Path) -> None:
    """Remove all but the newest :data:`KEPT` prediction folders, leftovers of killed writes, and the
    exported models of the folders removed."""
    parent = Path(cache_dir) / PREDICTIONS
    folders = [p for p in parent.iterdir() if p.is_dir()]
    done = sorted((p for p in folders if not p.name.endswith(TMP_SUFFIX)), key=lambda p: p.stat().st_mtime_ns,
                  reverse=True)
    # one writer at a time (the campaign lock): any other temporary folder is a killed write's
    for old in [*done[KEPT:], *(p for p in folders if p.name.endswith(TMP_SUFFIX))]:
        shutil.rmtree(old, ignore_errors=True)
    kept, models = {p.name for p in done[:KEPT]}, Path(cache_dir) / MODELS
    for old in (p for p in models.iterdir() if p.name not in kept) if models.is_dir() else ():
        shutil.rmtree(old, ignore_errors=True)


def _save(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.save(handle, array)
    fsync(path)
