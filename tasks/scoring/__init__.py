"""The score step: the configured strategy scores every pool example; lower = ask first.

The strategies are :mod:`.strategies` (ActiveLab in :mod:`.activelab`, uncertainty
measures in :mod:`.uncertainty`, embedding geometry in :mod:`.geometry`). A user adds
one by naming ``module:function`` as ``score.strategy`` in params.yaml: the function
takes a :class:`~.strategies.ScoreInputs` and ``seed=`` and returns the two score
arrays, lower = ask first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from crowdloop.tasks.config_checks import load_user_strategy
from crowdloop.tasks.errors import ConfigError
from crowdloop.tasks.scoring.strategies import BUILTIN, MODEL_FREE, ScoreInputs, Strategy

__all__ = ["AUTO", "ScoreInputs", "effective_strategy", "resolve", "score", "score_inputs"]
AUTO = "auto"  # resolved each round by effective_strategy
# Built-in strategies that never read the embeddings: for them a pool's embeddings (rows of the
# embedding cache, read only when used) stay on disk. Every other strategy gets them as an array.
NO_EMBEDDINGS = ("activelab", "activelab_ensemble", "random", "good_random", "agreement", "least_confidence",
                 "margin", "entropy", "qbc", "bald")


def resolve(name: str) -> Strategy:
    """The strategy called ``name``: a built-in one or ``module:function``."""
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        return load_user_strategy(name)
    raise ValueError(f"unknown score strategy {name!r}; known: {', '.join(sorted(BUILTIN))} "
                     "(or module:function).")


def score_inputs(wide: pd.DataFrame, predictions, *, n_classes: int, batch_size: int,
                 model_signal: bool | None = None) -> ScoreInputs:
    """The score step's input: labels_multiannotator (N, M) and every array of ``predictions``
    (train.Predictions); without a trained model only the embeddings."""
    trained = predictions.trained
    return ScoreInputs(
        labels_multiannotator=wide, n_unlabeled=len(predictions.pred_probs_unlabeled), n_classes=n_classes,
        pred_probs=predictions.pred_probs if trained else None,
        pred_probs_unlabeled=predictions.pred_probs_unlabeled if trained else None,
        fold_pred_probs=predictions.fold_pred_probs,
        fold_pred_probs_unlabeled=predictions.fold_pred_probs_unlabeled if trained else None,
        embeddings=predictions.embeddings, embeddings_unlabeled=predictions.embeddings_unlabeled,
        posterior_probs=predictions.posterior_probs, posterior_probs_unlabeled=predictions.posterior_probs_unlabeled,
        batch_size=batch_size, model_signal=model_signal,
    )


def effective_strategy(strategy: str, inputs: ScoreInputs, *, cold_start: bool,
                       signal: str = "activelab", no_signal: str = "agreement") -> str:
    """The strategy that scores this round.

    ``cold_start`` instead of a model-based ``strategy`` (``auto`` included) when no model
    was trained (nothing labeled yet, or labels of one class only), ``cold_start`` is on and
    embeddings of the unlabeled examples exist.
    ``auto``: ``signal`` (``score.signal_strategy``) when the model carries signal
    (``inputs.model_signal``), else ``no_signal`` (a model-free strategy).
    """
    if (cold_start and inputs.pred_probs is None and strategy not in MODEL_FREE
            and inputs.embeddings_unlabeled is not None):
        return "cold_start"
    if strategy == AUTO:
        return signal if inputs.model_signal else no_signal
    return strategy


def score(strategy: str, inputs: ScoreInputs, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of shapes (N,), (U,) from the named strategy (see :func:`effective_strategy`
    for the cold start); lower = label first."""
    if strategy not in NO_EMBEDDINGS and inputs.embeddings_unlabeled is not None:
        inputs = dataclasses.replace(inputs, embeddings_unlabeled=np.asarray(inputs.embeddings_unlabeled))
    scores_labeled, scores_unlabeled = resolve(strategy)(inputs, seed=seed)
    scores_labeled = np.asarray(scores_labeled, dtype=float)
    scores_unlabeled = np.asarray(scores_unlabeled, dtype=float)
    if scores_labeled.shape != (inputs.n_labeled,) or scores_unlabeled.shape != (inputs.n_unlabeled,):
        raise ConfigError(f"'score.strategy' {strategy!r} returned scores of shapes {scores_labeled.shape} and "
                          f"{scores_unlabeled.shape}; expected ({inputs.n_labeled},) and ({inputs.n_unlabeled},): "
                          "one score per labeled example, one per unlabeled example.")
    if not (np.isfinite(scores_labeled).all() and np.isfinite(scores_unlabeled).all()):
        raise ConfigError(f"'score.strategy' {strategy!r} returned a NaN or infinite score; every score must be "
                          "finite.")
    return scores_labeled, scores_unlabeled
