"""The only module that reads and writes campaign data.

A campaign is a directory::

    params.yaml                  the campaign's configuration
    dvc.yaml, data.dvc           DVC: the round stage; data/ as one tracked directory
    metrics.json                 the latest round's metrics (git-tracked, `dvc metrics diff`)
    data/
      examples.parquet           schema.EXAMPLE_COLUMNS, one row per example
      annotations/NNN-SSS-*.parquet
                                 schema.ANNOTATION_COLUMNS; one new part file per ingestion,
                                 never rewritten (NNN: the round, SSS: the part's number)
      simulator/answers.parquet  simulated annotators' uncollected answers (demo)
      rounds/NNN/                batch.csv, consensus.parquet, annotators.csv, pred_probs.parquet,
                                 metrics.json, assignments/<annotator>.csv, unroutable.csv,
                                 lineage.json (the round's MLflow run and Prefect flow run ids)
    inbox/                       answer files dropped for the next scheduled round (tasks/inbox.py)
    exports/                     round-NNN/: a batch as Label Studio tasks (`crowdloop export`);
                                 labelstudio/: exports fetched by `crowdloop labelstudio pull`
    mlruns/                      MLflow: mlflow.db and artifacts/ (git-ignored)
    .cache/                      embeddings, predictions, plans, models, Prefect results (git-ignored)
    .crowdloop/                  the writers' lock and journal (git-ignored)
    edited/<time>/               files of data/ changed by hand, kept aside (tasks/version/edits.py)

Every write goes to a temporary file, is flushed to disk and moved into place (tasks/files.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.files import (file_stem, people_csv, read_parquet, read_people_csv, replacing, slug,
                                   write_parquet_atomic, write_text_atomic)
from crowdloop.tasks.schema import ANNOTATION_COLUMNS, ANSWER_COLUMNS, EXAMPLE_COLUMNS

LINEAGE_FILE = "lineage.json"
IDS = ("example_id", "suggested_annotator")  # a batch's id columns: a str converter (not dtype) keeps NA as text
RENAMED_METRICS = {"labelled_examples": "labeled_examples"}  # metrics.json files keep the names they were written with


@dataclass(frozen=True)
class Campaign:
    """Paths of one campaign rooted at ``root``."""

    root: Path

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

    @property
    def state_dir(self) -> Path:
        """``.crowdloop/``: the writers' lock and journal (tasks/lock.py, tasks/journal.py); git ignores it."""
        return self.root / ".crowdloop"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    def round_dir(self, number: int) -> Path:
        return self.rounds_dir / f"{number:03d}"


def open_campaign(root: Path | str | Campaign) -> Campaign:
    """The campaign at ``root`` (a Campaign's root may be a string); fails if it has no data yet."""
    campaign = Campaign(Path(root.root if isinstance(root, Campaign) else root))
    cloned = campaign.params_file.is_file() and (campaign.root / "data.dvc").is_file()  # git's files, not DVC's
    if cloned and not campaign.examples_file.is_file():
        raise CampaignError(f"{campaign.root.resolve()}: data/ is not here (no data/examples.parquet), as in a fresh "
                            "clone; run `crowdloop pull` to fetch it from the DVC remote (remote.url).")
    if not campaign.examples_file.is_file() or not campaign.params_file.is_file():
        raise CampaignError(f"{campaign.root.resolve()} is not a crowdloop campaign (no params.yaml or "
                            "data/examples.parquet); run `crowdloop init` first or cd into a campaign.")
    return campaign


# ---------------------------------------------------------------- params and examples

def write_params(campaign: Campaign, text: str) -> None:
    write_text_atomic(campaign.params_file, text)


def write_examples(campaign: Campaign, examples: pd.DataFrame) -> None:
    write_parquet_atomic(campaign.examples_file, examples.loc[:, list(EXAMPLE_COLUMNS)])


def read_examples(campaign: Campaign) -> pd.DataFrame:
    """DataFrame with EXAMPLE_COLUMNS, one row per example, in stored order."""
    return read_parquet(campaign.examples_file)


# ---------------------------------------------------------------- annotations

def read_annotations(campaign: Campaign) -> pd.DataFrame:
    """All annotations (ANNOTATION_COLUMNS), part files in the order they were written."""
    parts = sorted(campaign.annotations_dir.glob("*.parquet"))
    return pd.concat([read_parquet(p) for p in parts], ignore_index=True) if parts else empty_annotations()


def empty_annotations() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in ANNOTATION_COLUMNS})
    return frame.astype({"round": "int64"})


def append_annotations(campaign: Campaign, answers: pd.DataFrame, *, round: int, source: str,
                       now: datetime | None = None, path: Path | None = None) -> Path | None:
    """Store ``answers`` (ANSWER_COLUMNS) as a new part file, stamped with ``round``, ``source``
    and the time; existing part files are never touched.

    ``source`` says where the answers came from (``initial``, ``simulated``, ``ingest:<file name>``);
    it is the rows' ``source`` and names the part file ``path`` (default: :func:`next_part`).
    Returns the new file, or None when ``answers`` is empty (nothing is written).
    """
    if answers.empty:
        return None
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    rows = answers.loc[:, list(ANSWER_COLUMNS)].reset_index(drop=True)
    rows = rows.assign(round=int(round), source=source, time=stamp).loc[:, list(ANNOTATION_COLUMNS)]
    path = path or next_part(campaign, round=round, source=source)
    write_parquet_atomic(path, rows.astype({"round": "int64"}))
    return path


def next_part(campaign: Campaign, *, round: int, source: str) -> Path:
    """The name the next annotation part file takes: ``NNN-SSS-<source>.parquet``."""
    number = len(list(campaign.annotations_dir.glob("*.parquet")))
    return campaign.annotations_dir / f"{int(round):03d}-{number:03d}-{slug(source, fallback='annotations')}.parquet"


def discard_round(campaign: Campaign, number: int, *, parts: list[Path]) -> None:
    """Remove round ``number``'s folder and the annotation ``parts`` it added (a failed round)."""
    for part in parts:
        part.unlink(missing_ok=True)
    shutil.rmtree(campaign.round_dir(number), ignore_errors=True)


# ---------------------------------------------------------------- simulator

def write_simulator_answers(campaign: Campaign, answers: pd.DataFrame) -> None:
    write_parquet_atomic(campaign.simulator_file, answers.loc[:, list(ANSWER_COLUMNS)])


def read_simulator_answers(campaign: Campaign) -> pd.DataFrame:
    """The simulated annotators' uncollected answers (ANSWER_COLUMNS)."""
    if not campaign.simulator_file.is_file():
        raise CampaignError(f"{campaign.root}: this campaign has no simulated annotators "
                            "(data/simulator/answers.parquet); run rounds without --simulate.")
    return read_parquet(campaign.simulator_file)


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

    ``batch`` : schema.BATCH_COLUMNS. ``consensus`` : index example_id, labels as class names.
    ``pred_probs`` : DataFrame of shape (P, K), index example_id, one column per class name:
    out-of-sample probabilities for every pool example (the next round's CROWDLAB input).
    ``assignments`` : annotator id -> their rows of the batch, written to
    ``assignments/<annotator>.csv``. ``unroutable`` : ids that no annotator could
    be asked about, written to ``unroutable.csv``.
    """
    folder = campaign.round_dir(number)
    # the CSVs people open in spreadsheets are escaped against formula injection (files.people_csv)
    write_text_atomic(folder / "batch.csv", people_csv(batch))
    for annotator, rows in (assignments or {}).items():
        write_text_atomic(folder / "assignments" / f"{file_stem(annotator)}.csv", people_csv(rows))
    if unroutable is not None:
        write_text_atomic(folder / "unroutable.csv", people_csv(pd.DataFrame({"example_id": unroutable})))
    write_parquet_atomic(folder / "consensus.parquet", consensus.reset_index())
    write_parquet_atomic(folder / "pred_probs.parquet", pred_probs.reset_index())
    write_text_atomic(folder / "annotators.csv", people_csv(annotators))
    text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
    write_text_atomic(folder / "metrics.json", text)
    write_text_atomic(campaign.metrics_file, text)
    return folder


def round_artifacts(campaign: Campaign, number: int) -> list[Path]:
    """The files of round ``number`` that its MLflow run keeps."""
    folder = campaign.round_dir(number)
    return [folder / name for name in ("batch.csv", "annotators.csv", "consensus.parquet", "metrics.json")]


def read_batch(campaign: Campaign, number: int) -> pd.DataFrame:
    """Round ``number``'s batch (schema.BATCH_COLUMNS) as the round wrote it: an id NA or nan stays text."""
    return read_people_csv(campaign.round_dir(number) / "batch.csv", converters=dict.fromkeys(IDS, str))


def read_round_metrics(campaign: Campaign, number: int) -> dict:
    """Round ``number``'s metrics.json, metric keys renamed since under their new names."""
    metrics = json.loads((campaign.round_dir(number) / "metrics.json").read_text())
    return {RENAMED_METRICS.get(key, key): value for key, value in metrics.items()}


def read_pred_probs(campaign: Campaign, number: int) -> pd.DataFrame | None:
    """Round ``number``'s pool probabilities (index example_id, one column per class name), or None before round 1."""
    path = campaign.round_dir(number) / "pred_probs.parquet"
    return read_parquet(path).set_index("example_id") if path.is_file() else None


def read_annotators(campaign: Campaign, number: int) -> pd.DataFrame | None:
    """Round ``number``'s annotators.csv (annotator quality, flags), or None when there is none."""
    path = campaign.round_dir(number) / "annotators.csv"
    return read_people_csv(path, converters={"annotator_id": str}) if path.is_file() else None


def write_lineage(campaign: Campaign, number: int, ids: dict) -> None:
    """Round ``number``'s ids in other systems (MLflow run, Prefect flow run) as lineage.json."""
    write_text_atomic(campaign.round_dir(number) / LINEAGE_FILE, json.dumps(ids, indent=2, sort_keys=True) + "\n")


def read_lineage(campaign: Campaign, number: int) -> dict:
    """What :func:`write_lineage` wrote for round ``number``; {} for rounds made before lineage."""
    path = campaign.round_dir(number) / LINEAGE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


# ---------------------------------------------------------------- files for people and tools; hashes

def write_file(path: Path, content: str | bytes) -> Path:
    """Write one file outside data/ (an export, a fetched Label Studio export), atomically."""
    with replacing(path) as tmp:
        tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def data_md5s(campaign: Campaign) -> dict[str, str]:
    """``{path under data/: md5 of its bytes}`` for every file under data/ (DVC's file hash)."""
    found = {}
    for path in sorted(p for p in campaign.data.rglob("*") if p.is_file()):
        digest = hashlib.md5()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        found[path.relative_to(campaign.data).as_posix()] = digest.hexdigest()
    return found


def data_hash(campaign: Campaign) -> str:
    """SHA-256 over every file under data/ (relative path and md5 of its bytes)."""
    return hashlib.sha256("".join(f"{name}\0{md5}\n" for name, md5 in data_md5s(campaign).items()).encode()).hexdigest()
