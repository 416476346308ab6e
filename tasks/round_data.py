"""The round's data, and every conversion between what is stored and what the steps compute on.

Stored tables hold class *names* and string ids (:mod:`.schema`); the steps work on
class indices and arrays. This module is the one place that converts, both ways:
names -> indices when a round's data is built (:func:`build`), and back when its
results leave (:func:`probs_frame`, :func:`consensus_table`, :func:`batch_table`).
Probabilities that come back from an earlier round are joined to the classes by
*name* (:func:`previous_probs`), never by column position, so reordering ``classes``
in params.yaml changes no result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.schema import BATCH_COLUMNS

log = logging.getLogger("crowdloop")


@dataclass(frozen=True)
class RoundData:
    """The campaign as one round sees it.

    Attributes
    ----------
    classes : the K class names; index k of every array below is ``classes[k]``.
    labeled_ids : ndarray of shape (N,)
        Pool examples with at least one annotation, in stored order.
    unlabeled_ids : ndarray of shape (U,)
        Pool examples with none.
    test_ids : ndarray of shape (T,)
        Gold test split.
    texts : Series
        example_id -> text, for every example.
    annotations : DataFrame
        Long form, ``label`` as class index: example_id, annotator_id, label.
    test_gold : ndarray of shape (T,)
        Gold class index of each test example (-1 where unknown).
    pool_gold : Series
        example_id -> gold class index for pool examples whose gold is known (demo data).
    """

    classes: tuple[str, ...]
    labeled_ids: np.ndarray
    unlabeled_ids: np.ndarray
    test_ids: np.ndarray
    texts: pd.Series
    annotations: pd.DataFrame
    test_gold: np.ndarray
    pool_gold: pd.Series

    @property
    def pool_ids(self) -> np.ndarray:
        """Labeled then unlabeled ids, shape (N + U,): the row order of every pool-wide array."""
        return np.concatenate([self.labeled_ids, self.unlabeled_ids])

    def texts_of(self, ids) -> list[str]:
        return self.texts.loc[ids].tolist()


def build(examples: pd.DataFrame, annotations: pd.DataFrame, *, classes: Sequence[str]) -> RoundData:
    """Split ``examples`` (schema.EXAMPLE_COLUMNS) by split and labeled state, and map the class
    names of ``annotations`` (schema.ANNOTATION_COLUMNS or ANSWER_COLUMNS) to indices."""
    classes = tuple(classes)
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(annotations["label"]) - set(index))
    if unknown:
        raise CampaignError(
            f"stored annotations use labels {unknown} that params.yaml 'classes' does not list; "
            "add them to 'classes' (order does not matter) or fix the data."
        )
    pool = examples[examples["split"] == "pool"]
    test = examples[examples["split"] == "test"]
    # Only pool examples are annotated for training; ingestion refuses gold test examples.
    annotations = annotations[annotations["example_id"].isin(pool["example_id"])]
    labeled = set(annotations["example_id"])
    in_pool = pool["example_id"].isin(labeled)
    long = annotations.loc[:, ["example_id", "annotator_id"]].copy()
    long["label"] = annotations["label"].map(index).astype(int)
    gold = pool.dropna(subset=["gold"]).set_index("example_id")["gold"]
    return RoundData(
        classes=classes,
        labeled_ids=pool.loc[in_pool, "example_id"].to_numpy(),
        unlabeled_ids=pool.loc[~in_pool, "example_id"].to_numpy(),
        test_ids=test["example_id"].to_numpy(),
        texts=examples.set_index("example_id")["text"],
        annotations=long.reset_index(drop=True),
        test_gold=test["gold"].map(index).fillna(-1).astype(int).to_numpy(),
        pool_gold=gold[gold.isin(index)].map(index).astype(int),
    )


def in_force(annotations: pd.DataFrame, *, on_change: str) -> pd.DataFrame:
    """The answers a round counts: one per (example, annotator), as consensus needs.

    ``annotations`` : schema.ANNOTATION_COLUMNS, oldest first (store.read_annotations).
    ``on_change`` : ingest.on_change. ``keep_both``: an annotator's changed answers all count,
    the k-th different one under annotator id ``<annotator>#k``; otherwise (``latest``, and
    ``reject``, which stores no change) the newest answer is the annotator's. The same answer
    stored twice counts once. Part files are never rewritten: this is decided when reading.
    """
    key = ["example_id", "annotator_id"]
    if on_change != "keep_both":
        return annotations.drop_duplicates(key, keep="last").sort_index()
    distinct = annotations.drop_duplicates([*key, "label"])
    nth = distinct.groupby(key, sort=False).cumcount() + 1
    return distinct.assign(annotator_id=distinct["annotator_id"].where(
        nth == 1, distinct["annotator_id"] + "#" + nth.astype(str)))


def previous_probs(previous: pd.DataFrame | None, data: RoundData) -> np.ndarray | None:
    """The last round's out-of-sample probabilities for ``data.labeled_ids``, shape (N, K), columns
    joined to ``data.classes`` by name; None (this round's consensus is then the majority vote)
    when there are none.

    ``previous`` : index example_id, one column per class name (store.read_pred_probs).
    A column for a class no longer listed is dropped (rows renormalised). When a listed
    class or a labeled example has no probability (a class added to params.yaml, an
    example the last round did not predict), CROWDLAB cannot run on every labeled
    example: this round uses the majority vote, and the log says why.
    """
    if previous is None:
        return None
    columns = previous.columns.astype(str)
    missing_classes = [c for c in data.classes if c not in columns]
    missing_ids = pd.Index(data.labeled_ids).difference(previous.index)
    if missing_classes or len(missing_ids):
        what = (f"class(es) {', '.join(missing_classes)}" if missing_classes else
                f"{len(missing_ids)} labeled example(s), e.g. '{missing_ids[0]}'")
        log.warning("the last round's probabilities have no column or row for %s; this round's consensus "
                    "is the majority vote, CROWDLAB resumes from the next round", what)
        return None
    probs = previous.set_axis(columns, axis=1).loc[data.labeled_ids, list(data.classes)].to_numpy(dtype=float)
    if len(columns) > len(data.classes):  # a dropped class's share goes back to the others
        probs = probs / probs.sum(axis=1, keepdims=True)
    return probs


def probs_frame(data: RoundData, labeled: np.ndarray, unlabeled: np.ndarray) -> pd.DataFrame:
    """Probabilities (N, K) and (U, K) as one frame: index example_id (``data.pool_ids``),
    one column per class name; what store.write_round keeps and :func:`previous_probs` reads."""
    return pd.DataFrame(np.vstack([labeled, unlabeled]), index=pd.Index(data.pool_ids, name="example_id"),
                        columns=list(data.classes))


def pool_series(data: RoundData, labeled: np.ndarray, unlabeled: np.ndarray) -> pd.Series:
    """One value per pool example, (N,) and (U,) -> Series indexed by ``data.pool_ids``."""
    return pd.Series(np.concatenate([labeled, unlabeled]), index=data.pool_ids)


def pool_frame(data: RoundData, labeled: np.ndarray, unlabeled: np.ndarray) -> pd.DataFrame:
    """Rows (N, D) and (U, D), such as embeddings, as one frame indexed by ``data.pool_ids``."""
    return pd.DataFrame(np.vstack([labeled, unlabeled]), index=data.pool_ids)


def consensus_labels(data: RoundData, agreed) -> np.ndarray:
    """The consensus class index (N,) of each of ``data.labeled_ids`` (``agreed``: a consensus.Consensus)."""
    return agreed.examples.loc[data.labeled_ids, "consensus_label"].to_numpy().astype(int)


def consensus_table(data: RoundData, agreed) -> pd.DataFrame:
    """``agreed.examples`` with the consensus label as a class name (consensus.parquet)."""
    table = agreed.examples.copy()
    table["consensus_label"] = [data.classes[i] for i in table["consensus_label"]]
    table.index.name = "example_id"
    return table


def annotators_table(data: RoundData, agreed) -> pd.DataFrame:
    """``agreed.annotators`` with ``worst_class`` as a class name, empty for an annotator who never disagrees
    with the consensus (-1 in consensus.worst_class) (annotators.csv)."""
    table = agreed.annotators.copy()
    table["worst_class"] = [data.classes[i] if i >= 0 else None for i in table["worst_class"]]
    return table


def batch_table(data: RoundData, picks: pd.DataFrame) -> pd.DataFrame:
    """The batch people answer (schema.BATCH_COLUMNS) from select's picks: each pick's text and
    an empty ``label`` to fill in."""
    batch = picks.assign(text=data.texts.loc[picks["example_id"]].to_numpy(), label="")
    return batch.loc[:, list(BATCH_COLUMNS)]
