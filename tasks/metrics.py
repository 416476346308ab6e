"""What a round reports (metrics.json, MLflow, status, the simulation's curves): pure functions.

Every metric is a float or an int, except ``stop_reason`` (a sentence). The same
:func:`round_report` serves campaign rounds and simulated ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crowdloop.tasks import agreement, annotator_watch, round_data, signal, stopping


def classification_metrics(pred_probs: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and balanced accuracy of ``argmax(pred_probs)`` (N, K) against ``gold`` (N,);
    -1 = unknown. Balanced accuracy is the mean recall of the classes present in ``gold``."""
    known = gold >= 0
    if not known.any():
        return {}
    pred = pred_probs[known].argmax(axis=1)
    return {
        "accuracy": float(np.mean(gold[known] == pred)),
        "macro_f1": macro_f1(gold[known], pred),
        "balanced_accuracy": signal.balanced_accuracy(gold[known], pred),
    }


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean F1 over the classes in ``labels`` (N,) or ``predicted`` (N,): what scikit-learn's
    ``f1_score(labels, predicted, average="macro", zero_division=0)`` gives (tests/unit/test_metrics.py),
    without importing scikit-learn (1-2 s) into a round that needs nothing else from it."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    classes = np.union1d(labels, predicted)
    hits = np.array([np.sum((labels == c) & (predicted == c)) for c in classes], dtype=float)
    counted = np.array([np.sum(labels == c) + np.sum(predicted == c) for c in classes], dtype=float)
    return float(np.mean(2 * hits / counted)) if len(classes) else 0.0


def round_report(data: round_data.RoundData, plan, stored: pd.DataFrame, answers: pd.DataFrame | None,
                 history: list[dict], cfg) -> dict:
    """Everything a round reports: :func:`round_metrics`, the model's signal (``plan.signal``,
    :mod:`crowdloop.tasks.signal`), the annotators' agreement (:mod:`crowdloop.tasks.agreement`)
    and how many are flagged (:mod:`crowdloop.tasks.annotator_watch`), what selection did and the stopping rule
    over ``history`` (the earlier rounds' metrics) with this round's batch counted as spent.

    ``plan``: the round's flows.plan.Plan; ``stored``: the annotations the round started
    from; ``answers``: the simulated answers to its batch (None: people answer later).
    """
    metrics = round_metrics(data, plan.agreed, plan.predictions, stored, plan.batch, answers)
    metrics.update(plan.signal)
    labels = plan.agreed.examples["consensus_label"].reindex(plan.wide.index).to_numpy()
    metrics.update(agreement.agreement_metrics(plan.wide.to_numpy(), labels, classes=data.classes))
    metrics["flagged_annotators"] = len(annotator_watch.flagged_ids(plan.agreed.annotators))
    metrics.update({"unroutable": len(plan.unroutable), "near_duplicates": len(plan.duplicates),
                    "batch_cost": float(plan.batch["cost"].sum())})
    spend = stopping.spend_so_far(stored, cfg.budget, batch=plan.batch)
    metrics.update(stopping.stop_metrics([*history, metrics], spend, cfg.stopping))
    return metrics


def round_metrics(data: round_data.RoundData, agreed, predictions, stored: pd.DataFrame, batch: pd.DataFrame,
                  answers: pd.DataFrame | None) -> dict:
    """The model on the gold split, the consensus, the annotations and the batch, as numbers."""
    test = classification_metrics(predictions.test_probs, data.test_gold) if predictions.trained else {}
    metrics = {f"test_{k}": v for k, v in test.items()}
    metrics.update({
        "annotations": len(stored),
        "labeled_examples": len(data.labeled_ids),
        "model_trained": int(predictions.trained),  # 0: nothing labeled yet, or labels of one class
        "annotators": int(stored["annotator_id"].nunique()),
        "mean_consensus_quality": float(agreed.examples["consensus_quality"].mean()),
        "batch_size": len(batch),
        "new_annotations": 0 if answers is None else len(answers),
    })
    labels = round_data.consensus_labels(data, agreed)
    if predictions.trained and len(labels):
        oos = classification_metrics(predictions.pred_probs, labels)  # against the consensus, out of sample
        metrics.update({"oos_accuracy": oos["accuracy"], "oos_macro_f1": oos["macro_f1"]})
    gold = data.pool_gold.reindex(data.labeled_ids)
    known = gold.notna().to_numpy()
    if known.any():
        metrics["consensus_accuracy"] = float((labels[known] == gold.to_numpy()[known]).mean())
    return metrics
