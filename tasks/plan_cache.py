"""A round's plan on disk, keyed by everything it was made from.

A re-run of an unchanged round (after a crash, a cancelled command, a rollback) reads the
plan an earlier run made instead of computing consensus, scores and selection again, and
so never imports cleanlab or scikit-learn (1.5-2 s of the re-run here):

    <cache>/plans/<key[:16]>.pkl    {"key", "plan": the Plan without its predictions, "training_key"}

The key is the SHA-256 (:mod:`.fingerprint`) of the planning step's inputs, of every source
file of crowdloop and of the versions of the libraries that compute a plan: change any of
them and it is another key. The plan's predictions are not stored again: they are the
training step's, read back from the prediction cache by ``training_key`` (a plan whose
predictions were pruned from there is computed again), so as many plans are kept as predictions.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import pickle
from pathlib import Path

from crowdloop.tasks.files import replacing
from crowdloop.tasks.fingerprint import fingerprint
from crowdloop.tasks.prediction_cache import KEPT

log = logging.getLogger("crowdloop")
# what computes a plan besides crowdloop's own code
LIBRARIES = ("cleanlab", "crowd-kit", "numpy", "pandas", "scikit-learn", "scipy")


def key(inputs: dict) -> str:
    """The key of a plan made from ``inputs`` (every argument of the planning step, by name)."""
    return fingerprint({"inputs": inputs, "code": code_version()})


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 of crowdloop's source files and the versions of :data:`LIBRARIES`."""
    digest = hashlib.sha256()
    for package in ("crowdloop", "crowdloop.flows", "crowdloop.tasks"):  # apart in a source checkout
        for root in map(Path, importlib.util.find_spec(package).submodule_search_locations):
            for source in sorted(root.rglob("*.py")):
                digest.update(f"{package}/{source.relative_to(root)}\n".encode() + source.read_bytes())
    for library in LIBRARIES:
        digest.update(f"{library}=={_version(library)}\n".encode())
    return digest.hexdigest()


def read(cache_dir: Path, plan_key: str) -> tuple[object, str | None] | None:
    """(the plan without predictions, its training key) stored for ``plan_key``; None when there
    is none or it cannot be read (it is then made again and written over)."""
    path = _path(cache_dir, plan_key)
    try:
        with path.open("rb") as file:
            stored = pickle.load(file)
    except FileNotFoundError:
        return None
    except Exception as err:  # a torn or foreign file is a miss, never a failed round
        log.warning("ignoring the unreadable stored plan %s (%s)", path, err)
        return None
    if not isinstance(stored, dict) or stored.get("key") != plan_key:
        return None
    return stored["plan"], stored["training_key"]


def write(cache_dir: Path, plan_key: str, plan, training_key: str | None) -> Path:
    """Store ``plan`` (without predictions) under ``plan_key``; keeps the newest :data:`KEPT`."""
    path = _path(cache_dir, plan_key)
    with replacing(path) as tmp:
        tmp.write_bytes(pickle.dumps({"key": plan_key, "plan": plan, "training_key": training_key},
                                     protocol=pickle.HIGHEST_PROTOCOL))
    for old in sorted(path.parent.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)[KEPT:]:
        old.unlink(missing_ok=True)
    return path


def _path(cache_dir: Path, plan_key: str) -> Path:
    return Path(cache_dir) / "plans" / f"{plan_key[:16]}.pkl"


def _version(library: str) -> str:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return "absent"
