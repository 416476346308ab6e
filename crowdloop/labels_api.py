"""The Python API's labels export (re-exported by :mod:`crowdloop.api`): the campaign's labeled
dataset as it stands, one row an annotated example, for training or handing on.

The labels are the consensus of every stored annotation, those that came back after the last
round included, by the campaign's ``consensus.method`` with the last round's model where it may
take part: the consensus the next round would start from. With ``predicted``, the pool examples
nobody annotated follow, labeled by the last completed round's model (the argmax of its
pred_probs.parquet).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import consensus, round_data, signal, store
from crowdloop.tasks.errors import CampaignError, ConfigError
from crowdloop.tasks.store import Campaign
from crowdloop.tasks.wording import count, word

SUFFIXES = (".csv", ".parquet", ".jsonl")
COLUMNS = ("example_id", "text", "label", "consensus_quality", "annotator_agreement", "num_annotations")
PREDICTED_COLUMNS = ("source", "predicted_probability")  # after COLUMNS, with ``predicted`` only


@dataclasses.dataclass(frozen=True)
class Labels:
    """A labels export: where it went, its annotated rows, the annotations behind them, the consensus
    method that ran (``crowdlab``, ``majority``, a crowd-kit method), the round whose model took part
    in it (None: none did) and how many of the annotations came back after the last round (0 before
    round 1). With ``predicted``: the round whose model labeled the unannotated pool examples
    (``predicted_by``; None without ``predicted``), how many rows it labeled, how many unannotated
    pool examples it never saw (added since: left out), and whether its decisions beat chance
    (``ranking_signal``: a class-weighted model's labels can, when its probabilities do not; None:
    not measured)."""

    path: Path
    examples: int
    annotations: int
    method: str
    model_round: int | None
    since_last_round: int
    predicted_by: int | None = None
    predicted: int = 0
    left_out: int = 0
    model_signal: bool | None = None


def export_labels(campaign: str | Path | Campaign, out: str | Path | None = None, *,
                  predicted: bool = False) -> Labels:
    """Write the consensus label of every annotated pool example to ``out`` (default
    exports/labels.csv in the campaign; .csv, .parquet or .jsonl by its suffix), with
    ``consensus_quality`` (the method's confidence in the label: filter on it), the share of
    annotators who agree, their number, and ``gold`` where the examples have it. Texts are written
    as stored (not escaped for spreadsheets: this file is data). Nothing in data/ changes.

    With ``predicted``, one more row per pool example nobody annotated, labeled by the last
    completed round's model (``num_annotations`` 0), and two more columns on every row: ``source``
    (``annotators`` or ``model``) and ``predicted_probability`` (that model's probability of the
    row's label; on annotated rows from a model that did not train on the example, empty where the
    round did not see it). Pool examples added after that round have no prediction: left out.
    Refused (nothing written) before any round has completed, or when the last round trained no
    model."""
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
    if predicted:
        _check_predicts(rounds, history, previous)
    examples = store.read_examples(camp)
    counted = round_data.in_force(annotations, on_change=cfg.ingest.on_change)  # as a round counts them
    data = round_data.build(examples, counted, classes=cfg.classes)
    agreed = plan.agree(consensus.to_wide(data.annotations, example_ids=data.labeled_ids), data, previous,
                        signal.was_present(history), cfg)
    table = round_data.consensus_table(data, agreed).rename(columns={"consensus_label": "label"})
    table.insert(0, "text", data.texts.loc[table.index])
    labeled = len(table)
    left_out = 0
    if predicted:
        table, left_out = with_predictions(table, previous, data.unlabeled_ids, data.texts)
    gold = examples.set_index("example_id")["gold"].reindex(table.index)
    if gold.notna().any():
        table["gold"] = gold
    extra = [*(PREDICTED_COLUMNS if predicted else ()), *(["gold"] if "gold" in table else [])]
    table = table.reset_index().loc[:, [*COLUMNS, *extra]]
    store.write_file(path, _encoded(table, path.suffix))
    since = int((annotations["round"] >= rounds[-1]).sum()) if rounds else 0  # none before round 1: initial answers
    model_round = rounds[-1] if agreed.method == "crowdlab" and rounds else None
    done = Labels(path, labeled, len(data.annotations), agreed.method, model_round, since)
    if not predicted:
        return done
    return dataclasses.replace(done, predicted_by=rounds[-1], predicted=len(table) - labeled, left_out=left_out,
                               model_signal=signal.was_present(history, "ranking_signal"))


def _check_predicts(rounds: list[int], history: list[dict], previous: pd.DataFrame | None) -> None:
    """Refuse ``predicted`` when no round has completed or the last one trained no model."""
    from crowdloop.flows import plan

    if not rounds or previous is None:
        raise CampaignError("no round has completed yet, so no model has predicted the pool; run `crowdloop round` "
                            "first, or export without --predicted.")
    if history[-1].get("model_trained") == 0 or plan.trained_no_model(previous):
        raise CampaignError(f"round {rounds[-1]} trained no model (nothing labeled, or labels of one class), so it "
                            "predicted no labels; run a round once the labels hold two classes, or export without "
                            "--predicted.")


def with_predictions(table: pd.DataFrame, pred_probs: pd.DataFrame, unlabeled_ids, texts: pd.Series
                     ) -> tuple[pd.DataFrame, int]:
    """The annotated rows and, after them, one row per unannotated pool example the model predicted.

    Parameters
    ----------
    table : DataFrame, index example_id
        The annotated rows (``text``, ``label`` and the consensus columns of :data:`COLUMNS`).
    pred_probs : DataFrame of shape (P, K)
        The round's probabilities: index example_id, one column per class name.
    unlabeled_ids : ndarray of shape (U,)
        The pool examples nobody annotated, in stored order.
    texts : Series
        example_id -> text.

    Returns
    -------
    The rows with ``source`` and ``predicted_probability`` (joined on the class names), and how
    many of ``unlabeled_ids`` the round has no probabilities for (left out).
    """
    ids = pd.Index(unlabeled_ids)
    seen = ids[ids.isin(pred_probs.index)]
    probs = pred_probs.loc[seen]
    model = pd.DataFrame({"text": texts.loc[seen].to_numpy(), "label": probs.idxmax(axis=1).to_numpy(),
                          "num_annotations": 0, "source": "model",
                          "predicted_probability": probs.max(axis=1).to_numpy()},
                         index=pd.Index(seen, name=table.index.name))
    # each annotated row's probability of its label: NaN where the round did not see the example or the class
    rows = np.column_stack([pred_probs.reindex(table.index).to_numpy(dtype=float), np.full(len(table), np.nan)])
    column = pred_probs.columns.get_indexer(table["label"])  # -1: the NaN column
    annotated = table.assign(source="annotators", predicted_probability=rows[np.arange(len(rows)), column])
    return pd.concat([annotated, model]), len(unlabeled_ids) - len(seen)


def _encoded(table: pd.DataFrame, suffix: str) -> str | bytes:
    if suffix == ".parquet":
        return table.to_parquet(index=False)  # no path: the bytes
    if suffix == ".jsonl":
        return table.to_json(orient="records", lines=True, force_ascii=False)
    return table.to_csv(index=False)


def describe(done: Labels) -> str:
    """The command's lines for an export."""
    how = f"{done.method} with round {done.model_round}'s model" if done.model_round is not None else done.method
    since = f"; {count(done.since_last_round, 'annotation')} came back after the last round" \
        if done.since_last_round else ""
    if done.predicted_by is None:
        return (f"{count(done.examples, 'labeled example')} from {count(done.annotations, 'annotation')} -> "
                f"{done.path} (consensus: {how}{since})")
    by = f"round {done.predicted_by}'s model"
    lines = [f"{count(done.examples + done.predicted, 'row')} -> {done.path}: {done.examples} from annotators "
             f"(consensus of {count(done.annotations, 'annotation')}: {how}{since}), {done.predicted} from {by}"]
    if done.left_out:
        lines.append(f"{count(done.left_out, 'unannotated pool example')} added after round {done.predicted_by} "
                     f"{word(done.left_out, 'has', 'have')} no prediction and {word(done.left_out, 'is', 'are')} "
                     "left out; the next round predicts them")
    if done.model_signal is False:
        lines.append(f"warning: {by} carried no signal (no better than chance out of sample): its "
                     f"{count(done.predicted, 'predicted label')} (source model) are at chance level and "
                     "should not be trusted")
    return "\n".join(lines)
