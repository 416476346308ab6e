"""The only module that reads and writes a simulation's output folder (``crowdloop simulate --out``)::

    settings.json            what the finished rounds were run with (the data, the preset, params)
    replay/                  examples, initial and uncollected annotations, classes.json
    checkpoints/<arm>-seed<k>/   rows.csv, annotations.parquet, pred_probs.parquet after each round
    curves.csv, learning_curve.png, summary.txt
    mlruns/, .cache/         MLflow and the embeddings cache (elsewhere with --embedding-cache)

Rounds already in ``checkpoints/`` are resumed, so a folder only ever holds one
setting: :func:`prepare` refuses to mix another into it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from crowdloop.tasks import simulation_protocol
from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.files import read_parquet, replacing, write_parquet_atomic, write_text_atomic

SETTINGS_FILE = "settings.json"


def cache_dir(out: Path, shared: str | Path | None = None) -> Path:
    """The simulation's cache folder (embeddings): ``shared`` when given (``--embedding-cache``,
    a folder several simulations of the same texts read and extend), else out/.cache."""
    return Path(shared) if shared is not None else Path(out) / ".cache"


def prepare(out: Path, replay, settings: dict) -> None:
    """Make ``out`` hold ``replay`` for a simulation run with ``settings``, or refuse.

    ``settings``: JSON-able, everything that changes what a round decides (the model
    and step settings, the preset). Together with a fingerprint of ``replay`` it is
    written to out/settings.json; a folder whose settings.json says otherwise raises
    :class:`CampaignError` naming what differs, and nothing in it is changed.
    """
    out = Path(out)
    # Through JSON and back, so tuples compare equal to the lists settings.json holds.
    wanted = json.loads(json.dumps({"data": replay_fingerprint(replay), **settings}, default=str))
    path = out / SETTINGS_FILE
    if path.is_file():
        held = json.loads(path.read_text())
        if isinstance(held.get("params"), dict):  # one written before run_settings left the arms' keys out
            simulation_protocol.without_arm_keys(held["params"])
        differ = sorted(key for key in wanted.keys() | held.keys() if wanted.get(key) != held.get(key))
        if differ:
            named = [f"{key}: {_shown(_changed(wanted[key], held[key]))}"
                     if isinstance(wanted.get(key), dict) and isinstance(held.get(key), dict)
                     else "data or the split and start drawn from it" if key == "data" else key
                     for key in differ]
            raise CampaignError(
                f"{out} holds a simulation run with other settings (different {'; '.join(named)}), and its "
                f"finished rounds would be resumed as if run with these; give another --out, or delete {out} "
                "to start over.")
    elif (out / "checkpoints").is_dir():
        raise CampaignError(f"{out} holds checkpoints but no {SETTINGS_FILE} saying how they were made; "
                            f"give another --out, or delete {out}/checkpoints to start over.")
    write_replay(out, replay)
    write_text_atomic(path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")


def _changed(wanted: dict, held: dict, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two settings dicts (a nested dict: its keys)."""
    keys = []
    for key in sorted(wanted.keys() | held.keys()):
        mine, theirs = wanted.get(key), held.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            keys += _changed(mine, theirs, f"{prefix}{key}.")
        elif mine != theirs:
            keys.append(f"{prefix}{key}")
    return keys


def _shown(keys: list[str], most: int = 4) -> str:
    return ", ".join(keys[:most]) + (f" and {len(keys) - most} more" if len(keys) > most else "")


def replay_fingerprint(replay) -> str:
    """SHA-256 over the replay's examples, initial and uncollected annotations and classes."""
    digest = hashlib.sha256(json.dumps(list(replay.classes)).encode())
    for frame in (replay.examples, replay.initial, replay.uncollected):
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def write_replay(out: Path, replay) -> None:
    """The dataset a simulation replays (examples, initial, uncollected, classes) under out/replay/."""
    folder = Path(out) / "replay"
    write_parquet_atomic(folder / "examples.parquet", replay.examples)
    write_parquet_atomic(folder / "initial.parquet", replay.initial)
    write_parquet_atomic(folder / "uncollected.parquet", replay.uncollected)
    write_text_atomic(folder / "classes.json", json.dumps(list(replay.classes)) + "\n")


def read_replay(out: Path):
    from crowdloop.tasks.importers import Replay

    folder = Path(out) / "replay"
    return Replay(examples=read_parquet(folder / "examples.parquet"),
                  initial=read_parquet(folder / "initial.parquet"),
                  uncollected=read_parquet(folder / "uncollected.parquet"),
                  classes=tuple(json.loads((folder / "classes.json").read_text())))


def write_checkpoint(folder: Path, *, rows: pd.DataFrame, annotations: pd.DataFrame,
                     pred_probs: pd.DataFrame) -> None:
    """One simulated arm × seed after a round: its curve rows, annotations, pool probabilities
    (index example_id, one column per class name).

    ``rows.csv`` is written last: it alone says how many rounds are done.
    """
    write_parquet_atomic(folder / "annotations.parquet", annotations)
    write_parquet_atomic(folder / "pred_probs.parquet", pred_probs.rename_axis("example_id").reset_index())
    write_text_atomic(folder / "rows.csv", rows.to_csv(index=False))


def read_checkpoint(folder: Path):
    """``(rows, annotations, pred_probs)`` written by :func:`write_checkpoint`, or None."""
    if not (folder / "rows.csv").is_file():
        return None
    # round_trip: pandas' default float parser reads about one value in six a unit in the last place off
    # what to_csv wrote, so a resumed simulation's curves.csv differed from the run never interrupted
    rows = pd.read_csv(folder / "rows.csv", float_precision="round_trip")
    annotations = read_parquet(folder / "annotations.parquet")
    pred_probs = read_parquet(folder / "pred_probs.parquet").set_index("example_id")
    return rows, annotations, pred_probs


def write_simulation(out: Path, *, curves: pd.DataFrame, figure, summary: str) -> list[Path]:
    """curves.csv, learning_curve.png and summary.txt in ``out``; returns their paths."""
    paths = [out / "curves.csv", out / "learning_curve.png", out / "summary.txt"]
    write_text_atomic(paths[0], curves.to_csv(index=False))
    with replacing(paths[1]) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    write_text_atomic(paths[2], summary + "\n")
    return paths
