"""What a campaign's ``.cache/`` holds, for `crowdloop status`: its size, and embeddings no kept round reads.

Nothing under ``.cache/`` is data: every file is rebuilt when a round needs it. Predictions,
plans and exported models are pruned to the newest few as rounds go (:mod:`.prediction_cache`),
but the embeddings cache keeps one folder per encoder for good: a campaign that moves to
another ``model.name`` keeps the old encoder's vectors (1.5 GB for a million texts of MiniLM,
an hour or more to compute again). Whether to keep them is the user's call, so this module only
reports them; it deletes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crowdloop.tasks import prediction_cache
from crowdloop.tasks.embedding_cache import EMBEDDINGS


@dataclass(frozen=True)
class CacheUsage:
    """``total``: bytes under the cache folder; ``encoders``: each embeddings folder (an encoder's
    key) and its bytes; ``in_use``: the encoders whose vectors the kept predictions read."""

    folder: Path
    total: int
    encoders: dict[str, int]
    in_use: frozenset[str]

    @property
    def unread(self) -> dict[str, int]:
        """The embeddings folders no kept round reads, and their bytes (only when some round's are known)."""
        if not self.in_use:
            return {}
        return {name: size for name, size in self.encoders.items() if name not in self.in_use}


def usage(cache_dir: Path) -> CacheUsage:
    """What ``cache_dir`` holds (an empty usage when it does not exist)."""
    cache_dir = Path(cache_dir)
    embeddings = cache_dir / EMBEDDINGS
    encoders = {p.name: _size(p) for p in sorted(embeddings.iterdir()) if p.is_dir()} if embeddings.is_dir() else {}
    return CacheUsage(cache_dir, _size(cache_dir), encoders, frozenset(prediction_cache.encoders(cache_dir)))


def describe(used: CacheUsage, *, shown_as: str = ".cache") -> list[str]:
    """`crowdloop status`'s lines on the cache: nothing for an empty one."""
    if not used.total:
        return []
    lines = [f"  cache: {_bytes(used.total)} in {shown_as}/ (rebuilt as rounds need it; deleting it costs time, "
             "not data)"]
    for name, size in used.unread.items():
        lines.append(f"  cache: {shown_as}/{EMBEDDINGS}/{name} ({_bytes(size)}) holds the embeddings of an encoder no "
                     "kept round uses (model.name or the model's files changed): delete the folder to free the space, "
                     "or keep it to switch back without embedding again")
    return lines


def _size(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (0 when it is not there; files that vanish meanwhile count 0)."""
    total = 0
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            total += path.stat().st_size if path.is_file() and not path.is_symlink() else 0
        except OSError:
            continue
    return total


def _bytes(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
