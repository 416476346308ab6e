"""The embeddings cache: one file per encoder under a ``.cache/`` folder (a campaign's or a simulation's).

``{text_key: vector}`` where the key covers the text and how it was embedded
(:func:`crowdloop.tasks.models.base.embedding_key`), so a text is encoded once per
encoder and setting, in every round that needs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crowdloop.tasks.files import replacing


def path(cache_dir: Path, model_key: str) -> Path:
    return Path(cache_dir) / "embeddings" / f"{model_key}.npz"


def read(cache_dir: Path, model_key: str) -> dict[str, np.ndarray]:
    """``{text_key: vector}`` stored for one encoder (``model_key``); {} when there is none yet."""
    file = path(cache_dir, model_key)
    if not file.is_file():
        return {}
    with np.load(file) as stored:
        return dict(zip(stored["keys"].tolist(), stored["vectors"]))


def write(cache_dir: Path, model_key: str, cache: dict[str, np.ndarray]) -> None:
    keys = np.array(sorted(cache))
    vectors = np.stack([cache[k] for k in keys]) if len(keys) else np.zeros((0, 0), np.float32)
    with replacing(path(cache_dir, model_key)) as tmp:
        with tmp.open("wb") as handle:
            np.savez(handle, keys=keys, vectors=vectors)
