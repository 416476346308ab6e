"""Train on the consensus labels and predict: k-fold out-of-sample, pool and gold split.

The one expensive step of a round. Its Prefect task is cached on a content key
(texts, labels, model and fold settings, seed), so re-running a round whose
inputs did not change trains nothing and returns the stored predictions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from prefect import task

from crowdloop.tasks import model as model_mod
from crowdloop.tasks import store
from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.predict import out_of_sample

log = logging.getLogger("crowdloop")


@dataclass(frozen=True)
class Predictions:
    """Everything a round needs from the classifier.

    Attributes
    ----------
    pred_probs : ndarray of shape (N, K)
        Out-of-sample probabilities of the labelled examples.
    pred_probs_unlabeled : ndarray of shape (U, K)
        Mean over the fold models, for the unlabelled pool.
    fold_pred_probs_unlabeled : ndarray of shape (k, U, K)
        Each fold model's probabilities for the pool.
    test_probs : ndarray of shape (T, K)
        The model trained on all labelled examples, on the gold split.
    backend : str
        ``head`` or ``finetune``: what actually ran.
    seconds : dict
        Wall time of ``features``, ``kfold`` and ``full_fit``.
    fold_pred_probs : ndarray of shape (k, N, K) or None
        Each fold model on every labelled example (in-sample for k-1 of them).
    embeddings, embeddings_unlabeled : ndarray of shape (N, D), (U, D) or None
        ``backend.embed`` of the labelled and unlabelled pools.
    posterior_probs, posterior_probs_unlabeled : ndarray of shape (S, N, K), (S, U, K) or None
        Posterior samples for BALD: MC-dropout passes of the full model where the
        backend has them and ``mc_passes`` asked for them, else the fold models.
    trained : bool
        False when nothing was labelled: no model, uniform probabilities, only embeddings.
    """

    pred_probs: np.ndarray
    pred_probs_unlabeled: np.ndarray
    fold_pred_probs_unlabeled: np.ndarray
    test_probs: np.ndarray
    backend: str
    seconds: dict = field(default_factory=dict)
    fold_pred_probs: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    embeddings_unlabeled: np.ndarray | None = None
    posterior_probs: np.ndarray | None = None
    posterior_probs_unlabeled: np.ndarray | None = None
    trained: bool = True


def train_and_predict(
    backend,
    texts_labeled: Sequence[str],
    labels: np.ndarray,
    texts_unlabeled: Sequence[str],
    texts_test: Sequence[str],
    *,
    n_classes: int,
    folds: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
    mc_passes: int = 0,
    sample_weight: np.ndarray | None = None,
):
    """k-fold out-of-sample predictions plus a model fitted on all labelled examples.

    Returns ``(Predictions, fitted)`` where ``fitted`` is the full model (for
    export). With no labelled example nothing is trained: ``fitted`` is None and
    the predictions are uniform (``trained`` False), embeddings only.
    ``mc_passes`` >= 2 asks a backend with ``mc_dropout_proba`` for that many
    MC-dropout passes as BALD's posterior samples. ``sample_weight`` (N,): each
    labelled example's weight in every fit that trains on it (None: equal weights).
    """
    say = progress or (lambda message: None)
    seconds = {}
    start = time.perf_counter()
    n_l, n_u = len(texts_labeled), len(texts_unlabeled)
    features = backend.features([*texts_labeled, *texts_unlabeled, *texts_test])
    x_l, x_u, x_t = features[:n_l], features[n_l:n_l + n_u], features[n_l + n_u:]
    seconds["features"] = time.perf_counter() - start
    if n_l == 0:
        say(f"nothing labelled yet: no model; embedding {n_u} unlabelled examples for a cold start")
        uniform = np.full((n_u, n_classes), 1.0 / n_classes)
        return Predictions(
            pred_probs=np.zeros((0, n_classes)), pred_probs_unlabeled=uniform,
            fold_pred_probs_unlabeled=uniform[None], test_probs=np.full((len(texts_test), n_classes), 1.0 / n_classes),
            backend=backend.name, seconds=seconds, embeddings=backend.embed(None, x_l),
            embeddings_unlabeled=backend.embed(None, x_u), trained=False,
        ), None

    start = time.perf_counter()
    say(f"{folds}-fold out-of-sample predictions for {n_l} labelled and {n_u} unlabelled examples")
    oos = out_of_sample(backend, x_l, labels, x_u, n_classes=n_classes, folds=folds, seed=seed,
                        sample_weight=sample_weight, progress=progress)
    seconds["kfold"] = time.perf_counter() - start

    start = time.perf_counter()
    say(f"fitting on all {n_l} labelled examples; scoring {len(texts_test)} gold test examples")
    fitted = backend.fit(x_l, labels, n_classes=n_classes, seed=seed, sample_weight=sample_weight)
    test_probs = backend.predict_proba(fitted, x_t) if len(texts_test) else np.zeros((0, n_classes))
    seconds["full_fit"] = time.perf_counter() - start

    start = time.perf_counter()
    posterior = (oos.fold_pred_probs, oos.fold_pred_probs_unlabeled)
    if mc_passes >= 2 and hasattr(backend, "mc_dropout_proba"):
        say(f"{mc_passes} MC-dropout passes over {n_l + n_u} pool examples")
        posterior = tuple(backend.mc_dropout_proba(fitted, x, passes=mc_passes, seed=seed) for x in (x_l, x_u))
    embeddings = backend.embed(fitted, x_l), backend.embed(fitted, x_u)
    seconds["extras"] = time.perf_counter() - start

    predictions = Predictions(
        pred_probs=oos.pred_probs,
        pred_probs_unlabeled=oos.pred_probs_unlabeled,
        fold_pred_probs_unlabeled=oos.fold_pred_probs_unlabeled,
        test_probs=test_probs,
        backend=backend.name,
        seconds=seconds,
        fold_pred_probs=oos.fold_pred_probs,
        embeddings=embeddings[0],
        embeddings_unlabeled=embeddings[1],
        posterior_probs=posterior[0],
        posterior_probs_unlabeled=posterior[1],
    )
    return predictions, fitted


@task(name="train-and-predict", cache_key_fn=lambda _, params: params["key"],
      persist_result=True, retries=1, retry_delay_seconds=5)
def train_predict_task(
    key: str,
    campaign_dir: str,
    texts_labeled: list[str],
    labels: np.ndarray,
    texts_unlabeled: list[str],
    texts_test: list[str],
    *,
    model: ModelConfig,
    n_classes: int,
    folds: int,
    seed: int,
    mc_passes: int = 0,
    sample_weight: np.ndarray | None = None,
) -> tuple[Predictions, str]:
    """Load the encoder once, train and predict, export the full model; cached on ``key``.

    Returns the predictions and the directory of the exported model.
    """
    campaign = store.Campaign(Path(campaign_dir))
    name = model_mod.resolve_model_name(model.name)
    encoder_key = model_mod.model_key(name)
    cache = store.read_embedding_cache(campaign, encoder_key)
    known = len(cache)
    backend = model_mod.load_backend(model, embedding_cache=cache, progress=log.info)
    predictions, fitted = train_and_predict(
        backend, texts_labeled, labels, texts_unlabeled, texts_test,
        n_classes=n_classes, folds=folds, seed=seed, progress=log.info, mc_passes=mc_passes,
        sample_weight=sample_weight,
    )
    if len(cache) > known:
        store.write_embedding_cache(campaign, encoder_key, cache)
    model_dir = campaign.cache / "models" / key[:16]
    if fitted is not None:
        backend.save(fitted, model_dir)
    return predictions, str(model_dir)
