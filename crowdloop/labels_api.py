"""The Python API's labels export (re-exported by :mod:`crowdloop.api`): the campaign's labeled
dataset as it stands, one row an annotated example, for training or handing on.

The labels are the consensus of every stored annotation, those that came back after the last
round included, by the campaign's ``consensus.method`` with the last round's model where it may
take part: the consensus the next round would start from.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import consensus, round_data, signal, store
from crowdloop.tasks.errors import CampaignError, ConfigError
from crowdloop.tasks.store import Campaign
from crowdloop.tasks.wording import count

SUFFIXES = (".csv", ".parquet", ".jsonl")
COLUMNS = ("example_id", "text", "label", "consensus_quality", "annotator_agreement", "num_annotations")


@dataclasses.dataclass(frozen=True)
class Labels:
    """A labels export: where it went, its rows, the annotations behind them, the consensus method
    that ran (``crowdlab``, ``majority``, a crowd-kit method), the round whose model took part in it
    (None: none did) and how many of the annotations came back after the last round (0 before round 1)."""

    path: Path
    examples: int
    annotations: int
    method: str
    model_round: int | None
    since_last_round: int


def export_labels(campaign: str | Path | Campaign, out: str | Path | None = None) -> Labels:
    """Write the consensus label of every annotated pool example to ``out`` (default
    exports/labels.csv in the campaign; .csv, .parquet or .jsonl by its suffix), with
    ``consensus_quality`` (the method's confidence in the label: filter on it), the share of
    annotators who agree, their number, and ``gold`` where the examples have it. Texts are written
    as stored (not escaped for spreadsheets: this file is data). Nothing in data/ changes."""
    from crowdloop.flows import plan  # scikit-learn and cleanlab: only for this command

    camp = store.open_campaign(campaign)
    path = Path(out) if out is not None else camp.exports_dir / "labels.csv"
    if path.suffix not in SUFFIXES:
        raise ConfigError(f"--out {path}: write labels to a .csv, .parquet or .jsonl file.")
    if path.resolve().is_relative_to(camp.data.resolve()):  # the next command would move it to edited/
        raise ConfigError(f"--out {path}: inside data/, crowdloop's store; write the labels elsewhere "
                          "(the default is exports/labels.csv).")
    cfg = config_mod.load(camp.params_file)
    annotations = store.read_annotations(camp)
    if annotations.empty:
        raise CampaignError("no annotations are stored yet, so there are no labels to export; ingest answers first.")
    rounds = store.completed_rounds(camp)
    history = [store.read_round_metrics(camp, rounds[-1])] if rounds else []  # signal.was_present reads the last
    previous = store.read_pred_probs(camp, rounds[-1]) if rounds else None
    examples = store.read_examples(camp)
    counted = round_data.in_force(annotations, on_change=cfg.ingest.on_change)  # as a round counts them
    data = round_data.build(examples, counted, classes=cfg.classes)
    agreed = plan.agree(consensus.to_wide(data.annotations, example_ids=data.labeled_ids), data, previous,
                        signal.was_present(history), cfg)
    table = round_data.consensus_table(data, agreed).rename(columns={"consensus_label": "label"})
    table.insert(0, "text", data.texts.loc[table.index])
    gold = examples.set_index("example_id")["gold"].reindex(table.index)
    if gold.notna().any():
        table["gold"] = gold
    table = table.reset_index().loc[:, [*COLUMNS, *(["gold"] if "gold" in table else [])]]
    store.write_file(path, _encoded(table, path.suffix))
    since = int((annotations["round"] >= rounds[-1]).sum()) if rounds else 0  # none before round 1: initial answers
    model_round = rounds[-1] if agreed.method == "crowdlab" and rounds else None
    return Labels(path, len(table), len(data.annotations), agreed.method, model_round, since)


def _encoded(table: pd.DataFrame, suffix: str) -> str | bytes:
    if suffix == ".parquet":
        return table.to_parquet(index=False)  # no path: the bytes
    if suffix == ".jsonl":
        return table.to_json(orient="records", lines=True, force_ascii=False)
    return table.to_csv(index=False)


def describe(done: Labels) -> str:
    """The command's line for an export."""
    how = f"{done.method} with round {done.model_round}'s model" if done.model_round is not None else done.method
    since = f"; {count(done.since_last_round, 'annotation')} came back after the last round" \
        if done.since_last_round else ""
    return (f"{count(done.examples, 'labeled example')} from {count(done.annotations, 'annotation')} -> "
            f"{done.path} (consensus: {how}{since})")
