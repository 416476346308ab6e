"""A round's inputs as arrays: who is labelled, who is in the pool, what the gold split says.

Pure functions that turn the stored tables (class names, string ids) into the
integer arrays the steps work on, plus the content key that makes the expensive
training step cacheable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score


@dataclass(frozen=True)
class RoundData:
    """The campaign as one round sees it.

    Attributes
    ----------
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

    labeled_ids: np.ndarray
    unlabeled_ids: np.ndarray
    test_ids: np.ndarray
    texts: pd.Series
    annotations: pd.DataFrame
    test_gold: np.ndarray
    pool_gold: pd.Series


def build_round_data(examples: pd.DataFrame, annotations: pd.DataFrame, *, classes: Sequence[str]) -> RoundData:
    """Split ``examples`` by split and labelled state; map class names to indices."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(annotations["label"]) - set(index))
    if unknown:
        raise ValueError(
            f"stored annotations use labels {unknown} that params.yaml 'classes' does not list; "
            "add them to 'classes' (order matters) or fix the data."
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
        labeled_ids=pool.loc[in_pool, "example_id"].to_numpy(),
        unlabeled_ids=pool.loc[~in_pool, "example_id"].to_numpy(),
        test_ids=test["example_id"].to_numpy(),
        texts=examples.set_index("example_id")["text"],
        annotations=long.reset_index(drop=True),
        test_gold=test["gold"].map(index).fillna(-1).astype(int).to_numpy(),
        pool_gold=gold[gold.isin(index)].map(index).astype(int),
    )


def training_key(*, texts: Sequence[str], labels: np.ndarray, eval_texts: Sequence[str],
                 unlabeled_texts: Sequence[str], settings: dict, weights: np.ndarray | None = None) -> str:
    """SHA-256 of everything the train/predict step depends on; equal keys, equal results."""
    digest = hashlib.sha256()
    for part in (texts, eval_texts, unlabeled_texts):
        digest.update(json.dumps(list(part)).encode())
    digest.update(np.asarray(labels, dtype=np.int64).tobytes())
    digest.update(b"unweighted" if weights is None else np.asarray(weights, dtype=np.float64).tobytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def classification_metrics(pred_probs: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of ``argmax(pred_probs)`` (N, K) against ``gold`` (N,); -1 = unknown."""
    known = gold >= 0
    if not known.any():
        return {}
    pred = pred_probs[known].argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(gold[known], pred)),
        "macro_f1": float(f1_score(gold[known], pred, average="macro", zero_division=0)),
    }
