"""The only module that reads and writes campaign data.

A campaign is a directory::

    params.yaml                  the campaign's configuration
    dvc.yaml, data.dvc           DVC: the round stage; data/ as one tracked directory
    metrics.json                 the latest round's metrics (git-tracked, `dvc metrics diff`)
    data/
      examples.parquet           example_id, text, split (pool | test), gold (class or null)
      annotations/NNN-SSS-*.parquet
                                 example_id, annotator_id, label, round, source, time;
                                 one new part file per ingestion, never rewritten
      simulator/answers.parquet  simulated annotators' not-yet-collected answers (demo)
      rounds/NNN/                batch.csv, consensus.parquet, annotators.csv, metrics.json,
                                 assignments/<annotator>.csv, unroutable.csv,
                                 lineage.json (the round's MLflow run and Prefect flow run ids)
    inbox/                       answer files dropped for the next scheduled round (tasks/inbox.py)
    mlruns/                      MLflow: mlflow.db and artifacts/ (git-ignored)
    .cache/                      embeddings and Prefect results (git-ignored)

Every write goes to a temporary file first and is moved into place, so a crash
never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crowdloop.tasks.route import file_stem

EXAMPLE_COLUMNS = ("example_id", "text", "split", "gold")
ANNOTATION_COLUMNS = ("example_id", "annotator_id", "label", "round", "source", "time")
ANSWER_COLUMNS = ("example_id", "annotator_id", "label")
BATCH_COLUMNS = ("example_id", "text", "suggested_annotator", "score", "cost")
SPLITS = ("pool", "test")
LINEAGE_FILE = "lineage.json"


class CampaignError(RuntimeError):
    """The directory is not a usable campaign; the message says what to do."""


@dataclass(frozen=True)
class Campaign:
    """Paths of one campaign rooted at ``root``."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.resolve().name

    @property
    def params_file(self) -> Path:
        return self.root / "params.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def examples_file(self) -> Path:
        return self.data / "examples.parquet"

    @property
    def annotations_dir(self) -> Path:
        return self.data / "annotations"

    @property
    def simulator_file(self) -> Path:
        return self.data / "simulator" / "answers.parquet"

    @property
    def rounds_dir(self) -> Path:
        return self.data / "rounds"

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics.json"

    @property
    def mlruns(self) -> Path:
        return self.root / "mlruns"

    @property
    def cache(self) -> Path:
        return self.root / ".cache"

    def round_dir(self, number: int) -> Path:
        return self.rounds_dir / f"{number:03d}"


def open_campaign(root: Path | str) -> Campaign:
    """The campaign at ``root``; fails if it has no data yet."""
    campaign = Campaign(Path(root))
    if not campaign.examples_file.is_file() or not campaign.params_file.is_file():
        raise CampaignError(
            f"{campaign.root.resolve()} is not a crowdloop campaign (no params.yaml or "
            "data/examples.parquet); run `crowdloop init` first or cd into a campaign."
        )
    return campaign


# ---------------------------------------------------------------- examples

def write_examples(campaign: Campaign, examples: pd.DataFrame) -> None:
    write_parquet_atomic(campaign.examples_file, examples.loc[:, list(EXAMPLE_COLUMNS)])


def read_examples(campaign: Campaign) -> pd.DataFrame:
    """DataFrame with EXAMPLE_COLUMNS, one row per example, in stored order."""
    return pd.read_parquet(campaign.examples_file)


# ---------------------------------------------------------------- annotations

def read_annotations(campaign: Campaign) -> pd.DataFrame:
    """All annotations, part files in the order they were written."""
    parts = sorted(campaign.annotations_dir.glob("*.parquet"))
    if not parts:
        return empty_annotations()
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def empty_annotations() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in ANNOTATION_COLUMNS})
    return frame.astype({"round": "int64"})


def append_annotations(campaign: Campaign, rows: pd.DataFrame, *, source: str) -> Path | None:
    """Store ``rows`` (ANNOTATION_COLUMNS) as a new part file; existing files are never touched.

    Returns the new file, or ``None`` when ``rows`` is empty (nothing is written).
    """
    if rows.empty:
        return None
    campaign.annotations_dir.mkdir(parents=True, exist_ok=True)
    number = len(list(campaign.annotations_dir.glob("*.parquet")))
    round_ = int(rows["round"].max())
    slug = re.sub(r"[^A-Za-z0-9]+", "-", source).strip("-")[:40] or "annotations"
    path = campaign.annotations_dir / f"{round_:03d}-{number:03d}-{slug}.parquet"
    frame = rows.loc[:, list(ANNOTATION_COLUMNS)].reset_index(drop=True)
    write_parquet_atomic(path, frame.astype({"round": "int64"}))
    return path


def discard_round(campaign: Campaign, number: int, *, parts: list[Path]) -> None:
    """Remove round ``number``'s folder and the annotation ``parts`` it added (a failed round)."""
    import shutil

    for part in parts:
        part.unlink(missing_ok=True)
    shutil.rmtree(campaign.round_dir(number), ignore_errors=True)


# ---------------------------------------------------------------- simulator

def write_simulator_answers(campaign: Campaign, answers: pd.DataFrame) -> None:
    write_parquet_atomic(campaign.simulator_file, answers.loc[:, list(ANSWER_COLUMNS)])


def read_simulator_answers(campaign: Campaign) -> pd.DataFrame:
    if not campaign.simulator_file.is_file():
        raise CampaignError(
            f"{campaign.root}: this campaign has no simulated annotators "
            "(data/simulator/answers.parquet); run rounds without --simulate."
        )
    return pd.read_parquet(campaign.simulator_file)


# ---------------------------------------------------------------- rounds

def completed_rounds(campaign: Campaign) -> list[int]:
    """Round numbers whose outputs are complete (their metrics.json exists), ascending."""
    if not campaign.rounds_dir.is_dir():
        return []
    return sorted(int(p.parent.name) for p in campaign.rounds_dir.glob("*/metrics.json"))


def write_round(
    campaign: Campaign,
    number: int,
    *,
    batch: pd.DataFrame,
    consensus: pd.DataFrame,
    annotators: pd.DataFrame,
    pred_probs: pd.DataFrame,
    metrics: dict,
    assignments: dict[str, pd.DataFrame] | None = None,
    unroutable: list[str] | None = None,
) -> Path:
    """Write a round's outputs; metrics.json goes last and marks the round complete.

    ``pred_probs`` : DataFrame of shape (P, K), index example_id, one column per class:
    out-of-sample probabilities for every pool example (the next round's CROWDLAB input).
    ``assignments`` : annotator id -> their rows of the batch, written to
    ``assignments/<annotator>.csv``. ``unroutable`` : ids that no annotator could
    be asked about, written to ``unroutable.csv``.
    """
    folder = campaign.round_dir(number)
    write_text_atomic(folder / "batch.csv", batch.to_csv(index=False))
    for annotator, rows in (assignments or {}).items():
        write_text_atomic(folder / "assignments" / f"{file_stem(annotator)}.csv", rows.to_csv(index=False))
    if unroutable is not None:
        write_text_atomic(folder / "unroutable.csv", pd.DataFrame({"example_id": unroutable}).to_csv(index=False))
    write_parquet_atomic(folder / "consensus.parquet", consensus.reset_index())
    write_parquet_atomic(folder / "pred_probs.parquet", pred_probs.reset_index())
    write_text_atomic(folder / "annotators.csv", annotators.to_csv(index=False))
    text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    write_text_atomic(folder / "metrics.json", text)
    write_text_atomic(campaign.metrics_file, text)
    return folder


def read_batch(campaign: Campaign, number: int) -> pd.DataFrame:
    return pd.read_csv(campaign.round_dir(number) / "batch.csv", dtype={"example_id": str})


def read_round_metrics(campaign: Campaign, number: int) -> dict:
    return json.loads((campaign.round_dir(number) / "metrics.json").read_text())


def read_pred_probs(campaign: Campaign, number: int) -> pd.DataFrame | None:
    """Round ``number``'s pool probabilities (index example_id), or None before round 1."""
    path = campaign.round_dir(number) / "pred_probs.parquet"
    return pd.read_parquet(path).set_index("example_id") if path.is_file() else None


def write_lineage(campaign: Campaign, number: int, ids: dict) -> None:
    """Round ``number``'s ids in other systems (MLflow run, Prefect flow run) as lineage.json."""
    write_text_atomic(campaign.round_dir(number) / LINEAGE_FILE, json.dumps(ids, indent=2, sort_keys=True) + "\n")


def read_lineage(campaign: Campaign, number: int) -> dict:
    """What :func:`write_lineage` wrote for round ``number``; {} for rounds made before lineage."""
    path = campaign.round_dir(number) / LINEAGE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def read_annotator_stats(campaign: Campaign, number: int) -> pd.DataFrame:
    return pd.read_csv(campaign.round_dir(number) / "annotators.csv", dtype={"annotator_id": str})


# ---------------------------------------------------------------- embeddings cache

def read_embedding_cache(campaign: Campaign, model_key: str) -> dict[str, np.ndarray]:
    """``{text_hash: vector}`` stored for one encoder (``model_key``)."""
    path = campaign.cache / "embeddings" / f"{model_key}.npz"
    if not path.is_file():
        return {}
    with np.load(path) as stored:
        return dict(zip(stored["keys"].tolist(), stored["vectors"]))


def write_embedding_cache(campaign: Campaign, model_key: str, cache: dict[str, np.ndarray]) -> None:
    path = campaign.cache / "embeddings" / f"{model_key}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = np.array(sorted(cache))
    vectors = np.stack([cache[k] for k in keys]) if len(keys) else np.zeros((0, 0), np.float32)
    with replacing(path) as tmp:
        with tmp.open("wb") as handle:
            np.savez(handle, keys=keys, vectors=vectors)


# ---------------------------------------------------------------- hashes

def data_hash(campaign: Campaign) -> str:
    """SHA-256 over every file under data/ (relative path and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in campaign.data.rglob("*") if p.is_file()):
        digest.update(path.relative_to(campaign.data).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# ---------------------------------------------------------------- low level (also for tasks/simulation_store.py)

def write_parquet_atomic(path: Path, frame: pd.DataFrame) -> None:
    with replacing(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_text_atomic(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text)


@contextmanager
def replacing(path: Path):
    """A temporary sibling of ``path`` that replaces it only once fully written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; data files are ordinary files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
