"""Does the classifier carry signal? Out-of-sample balanced accuracy and log-loss against the class priors.

A strategy that trusts the model (ActiveLab, uncertainty, BADGE, ...) can only help
when the model tells the classes apart better than chance. This module measures that
from the round's k-fold out-of-sample probabilities, against the consensus labels:

* **balanced accuracy** (mean per-class recall) against chance, ``1 / K`` for the K
  classes present: any predictor that ignores the text scores 1 / K in expectation,
  whatever it predicts, so imbalanced data cannot fake it. Its standard error comes
  from the folds (spread of the per-fold balanced accuracies) and, where a fold has
  too few examples to say, from the binomial variance of each class's recall.
* **log-loss** against the **prior**: each held-out example scored by the class
  shares of the folds that trained without it. ``log_loss_gain`` = prior − model
  (nats per example; > 0: the probabilities carry information), with the paired
  standard error over examples.

``signal`` is 1 when balanced accuracy is above chance by more than
:data:`Z_SIGNAL` standard errors and the log-loss beats the prior; 0 otherwise. It is
what ``score.strategy: auto`` and ``consensus.require_signal`` read, so the log-loss is
that of the probabilities as fitted: the ones ActiveLab and CROWDLAB weigh.

A model fitted with balanced class weights (``model.class_weight``) learned as if every
class were equally common: on imbalanced data its probabilities overstate the rare
classes and can lose to the prior however well it ranks. Its log-loss is also read with
the weights undone (:func:`undo_class_weights`, ``oos_log_loss_weights_undone``), and
``ranking_signal`` is 1 when the balanced accuracy is above chance and that log-loss
beats the prior: the model tells the classes apart, though its probabilities as fitted
are not ones to weigh (see README, "Will it save annotations on my data?", for what
running ActiveLab on them did).
"""

from __future__ import annotations

import numpy as np

Z_SIGNAL = 2.0  # standard errors above chance that count as signal
_TINY = 1e-12


def model_signal(pred_probs: np.ndarray, labels: np.ndarray, folds: np.ndarray, *,
                 class_weighted: bool = False) -> dict[str, float]:
    """The signal metrics of a round.

    Parameters
    ----------
    pred_probs : ndarray of shape (N, K)
        Out-of-sample probabilities: row i from the fold model that did not see example i.
    labels : ndarray of shape (N,)
        Consensus class indices.
    folds : ndarray of shape (N,)
        The fold whose model predicted each example.
    class_weighted : bool
        The models were fitted with balanced class weights: ``ranking_signal`` reads the
        log-loss with the weights undone (``signal`` reads the probabilities as fitted).

    Returns
    -------
    dict with ``oos_balanced_accuracy``, ``oos_balanced_accuracy_se``, ``chance_balanced_accuracy``,
    ``oos_log_loss``, ``prior_log_loss``, ``log_loss_gain``, ``log_loss_gain_se``, ``signal_z``
    (standard errors above chance), ``signal`` and ``ranking_signal`` (1 or 0), and with
    ``class_weighted`` ``oos_log_loss_weights_undone``. Empty when fewer than two examples of
    two classes are labeled.
    """
    pred_probs = np.asarray(pred_probs, dtype=float)
    labels = np.asarray(labels, dtype=int)
    folds = np.asarray(folds, dtype=int)
    present = np.unique(labels)
    if len(labels) < 2 or len(present) < 2:
        return {}
    predicted = pred_probs.argmax(axis=1)
    balanced = balanced_accuracy(labels, predicted)
    chance = 1.0 / len(present)
    se = _balanced_accuracy_se(labels, predicted, folds)
    priors = _held_out_priors(labels, folds, pred_probs.shape[1])
    model_loss = _log_loss(pred_probs, labels)
    prior_loss = _log_loss(priors, labels)
    gain = prior_loss - model_loss
    gain_se = float(gain.std(ddof=1) / np.sqrt(len(gain)))
    z = (balanced - chance) / se if se > 0 else (np.inf if balanced > chance else 0.0)
    above_chance = z > Z_SIGNAL
    measured = {
        "oos_balanced_accuracy": balanced,
        "oos_balanced_accuracy_se": se,
        "chance_balanced_accuracy": chance,
        "oos_log_loss": float(model_loss.mean()),
        "prior_log_loss": float(prior_loss.mean()),
        "log_loss_gain": float(gain.mean()),
        "log_loss_gain_se": gain_se,
        "signal_z": float(min(z, 99.0)),
        "signal": int(above_chance and gain.mean() > 0),
    }
    measured["ranking_signal"] = measured["signal"]
    if class_weighted:
        undone = float(_log_loss(undo_class_weights(pred_probs, priors), labels).mean())
        measured["oos_log_loss_weights_undone"] = undone
        measured["ranking_signal"] = int(measured["signal"] or (above_chance and undone < prior_loss.mean()))
    return measured


def undo_class_weights(pred_probs: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Probabilities of a model fitted with balanced class weights, shape (N, K), for the data's own
    class shares ``priors`` (N, K): a fit that weighs each class by 1 / its share estimates
    p(y | x) / p(y), up to a constant per example, so multiplying by the shares and normalising
    gives p(y | x) back (the prior-shift correction of Saerens et al., 2002)."""
    unweighted = np.asarray(pred_probs, dtype=float) * priors
    return unweighted / np.clip(unweighted.sum(axis=1, keepdims=True), _TINY, None)


def _log_loss(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each example's negative log-probability of its label, shape (N,)."""
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], _TINY, None))


def was_present(history, kind: str = "signal") -> bool | None:
    """Whether the last round's model carried signal, from the rounds' metrics (oldest first);
    None when there is no earlier round or it was not measured. ``kind``: ``signal``, or
    ``ranking_signal`` (rounds measured before it existed read their ``signal``)."""
    if not history:
        return None
    value = history[-1].get(kind, history[-1].get("signal"))
    return None if value is None or value != value else bool(value)


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the classes present in ``labels`` (N,) of the share predicted right."""
    classes = np.unique(labels)
    return float(np.mean([(predicted[labels == c] == c).mean() for c in classes]))


def describe(metrics: dict) -> str:
    """The signal line of a round, for the log and ``crowdloop status``."""
    if "signal" not in metrics:
        return "model signal: not measured (fewer than two labeled classes)"
    ranking_only = not metrics["signal"] and metrics.get("ranking_signal") == 1
    verdict = "signal" if metrics["signal"] else "signal in its ranking only" if ranking_only else "NO SIGNAL"
    # The log-loss with the weights undone where it decides the verdict (elsewhere it is in the metrics)
    weights = f" ({metrics['oos_log_loss_weights_undone']:.3f} with the class weights undone)" if ranking_only else ""
    line = (f"model {verdict}: out-of-sample balanced accuracy {metrics['oos_balanced_accuracy']:.3f} "
            f"± {metrics['oos_balanced_accuracy_se']:.3f} vs chance {metrics['chance_balanced_accuracy']:.3f}; "
            f"log-loss {metrics['oos_log_loss']:.3f}{weights} vs class prior {metrics['prior_log_loss']:.3f}")
    if ranking_only:
        line += ("; its probabilities as fitted lose to the prior (balanced class weights overstate the rare "
                 "classes), so score.strategy auto and consensus.require_signal count it as no signal")
    return line


def _balanced_accuracy_se(labels: np.ndarray, predicted: np.ndarray, folds: np.ndarray) -> float:
    """Standard error of the balanced accuracy: the larger of the folds' spread and the binomial one.

    With k folds the spread of k per-fold values alone is a rough estimate (k - 1 degrees
    of freedom); the binomial variance of each class's recall bounds it from below.
    """
    classes = np.unique(labels)
    recalls = [(predicted[labels == c] == c).mean() for c in classes]
    binomial = np.sqrt(sum(r * (1 - r) / (labels == c).sum() for r, c in zip(recalls, classes))) / len(classes)
    per_fold = [balanced_accuracy(labels[folds == f], predicted[folds == f]) for f in np.unique(folds)
                if len(np.unique(labels[folds == f])) == len(classes)]
    spread = np.std(per_fold, ddof=1) / np.sqrt(len(per_fold)) if len(per_fold) >= 2 else 0.0
    # Recalls of 0 or 1 give a binomial variance of 0; half an example's worth keeps it honest.
    floor = 0.5 / len(labels)
    return float(max(binomial, spread, floor))


def _held_out_priors(labels: np.ndarray, folds: np.ndarray, n_classes: int) -> np.ndarray:
    """The class shares among the labels of the folds other than each example's (add-one smoothed,
    what its fold model trained on), shape (N, K)."""
    out = np.empty((len(labels), n_classes))
    for fold in np.unique(folds):
        held = folds == fold
        counts = np.bincount(labels[~held], minlength=n_classes) + 1.0
        out[held] = counts / counts.sum()
    return out
