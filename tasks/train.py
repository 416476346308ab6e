"""Train on the consensus labels and predict: k-fold out-of-sample, pool and gold split.

The one expensive step of a round. :func:`train_and_predict` is the pure step;
:func:`train_with_cache` runs it against a campaign's cache folder (embeddings,
exported model). Its content key (:func:`training_key`: texts, labels, weights,
model and fold settings, seed) lets the flow cache it, so re-running a round whose
inputs did not change trains nothing and returns the stored predictions.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from crowdloop.tasks import embedding_cache, pool, prediction_cache
from crowdloop.tasks import models as models_mod
from crowdloop.tasks.config import Config, ModelConfig
from crowdloop.tasks.models.base import checked_model, model_key, resolve_backend
from crowdloop.tasks.predict import MapFits, can_fit, out_of_sample
from crowdloop.tasks.wording import count

log = logging.getLogger("crowdloop")
CODE_VERSION = "7"  # bump when train_and_predict's results (or their pickled form) change for the same inputs


@dataclass(frozen=True)
class TrainingSet:
    """What the classifier learns from and predicts on in one round.

    ``labels`` (N,): the consensus class index of each of ``texts_labeled``;
    ``sample_weight`` (N,) or None: each labeled example's weight (:func:`sample_weights`).
    """

    texts_labeled: list[str]
    labels: np.ndarray
    texts_unlabeled: list[str]
    texts_test: list[str]
    sample_weight: np.ndarray | None = None


def sample_weights(agreed, ids, how: str, *, labels: np.ndarray | None = None,
                   class_weight: str = "none") -> np.ndarray | None:
    """Training weight per labeled example, or None for equal weights.

    ``how``: ``consensus_quality`` weights each example by its consensus quality, so a
    label the annotators and the model doubt counts less; ``none`` does not.
    ``class_weight``: ``balanced`` also weights each class inversely to its share of
    ``labels`` (the consensus labels of ``ids``), so a rare class counts as much as a
    common one in the fit; ``none`` does not. ``agreed``: a consensus.Consensus.
    """
    if len(ids) == 0:
        return None
    weights = None
    if how == "consensus_quality":
        quality = agreed.examples.loc[ids, "consensus_quality"].to_numpy(dtype=float)
        if np.isfinite(quality).all() and quality.sum() > 0:
            weights = np.clip(quality, 0.0, None)
        else:
            log.warning("consensus quality unusable as training weights (non-finite or all 0); weighting equally")
    if class_weight == "balanced" and labels is not None:
        present, counts = np.unique(labels, return_counts=True)
        share = dict(zip(present, len(labels) / (len(present) * counts)))
        weights = (np.ones(len(ids)) if weights is None else weights) * np.array([share[y] for y in labels])
    return weights


def encoder_key(model: ModelConfig) -> str:
    """The model ``model.name`` names, as :func:`~crowdloop.tasks.models.base.model_key`: a folder's
    key covers its files, so a model saved again under the same name is another key. Raises
    ModelError when the name names no model that can load here, or max_length is more than it reads."""
    return model_key(checked_model(model))


def training_settings(cfg: Config, mc_passes: int) -> dict:
    """What of ``cfg`` the train step's results depend on (with ``mc_passes``), for :func:`training_key`;
    the model by what it is (:func:`encoder_key`), not only by its name."""
    return {"model": cfg.model.__dict__ | {"backend": resolve_backend(cfg.model.backend)},
            "encoder": encoder_key(cfg.model), "folds": cfg.predict.folds, "seed": cfg.seed,
            "mc_passes": mc_passes, "chunk_size": cfg.predict.chunk_size}


def training_key(training: TrainingSet, *, settings: dict) -> str:
    """SHA-256 of everything the train/predict step depends on; equal keys, equal results."""
    digest = hashlib.sha256()
    for part in (training.texts_labeled, training.texts_test, training.texts_unlabeled):
        # a length-prefixed stream, so a million texts are never one string in memory
        digest.update(f"{len(part)}\n".encode())
        for text in part:
            encoded = text.encode() if isinstance(text, str) else repr(text).encode()  # a non-text fails later
            digest.update(b"%d:" % len(encoded) + encoded)
    digest.update(np.asarray(training.labels, dtype=np.int64).tobytes())
    weights = training.sample_weight
    digest.update(b"unweighted" if weights is None else np.asarray(weights, dtype=np.float64).tobytes())
    digest.update(json.dumps(settings | {"code": CODE_VERSION}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Predictions:
    """Everything a round needs from the classifier.

    Attributes
    ----------
    pred_probs : ndarray of shape (N, K)
        Out-of-sample probabilities of the labeled examples.
    pred_probs_unlabeled : ndarray of shape (U, K)
        Mean over the fold models, for the unlabeled pool.
    fold_pred_probs_unlabeled : ndarray of shape (k, U, K)
        Each fold model's probabilities for the pool.
    test_probs : ndarray of shape (T, K)
        The model trained on all labeled examples, on the gold split.
    backend : str
        ``head`` or ``finetune``: what actually ran.
    seconds : dict
        Wall time of ``features``, ``fit_and_kfold`` (every fit, the folds' predictions),
        ``test`` and ``extras`` (posterior samples, embeddings).
    fold_pred_probs : ndarray of shape (k, N, K) or None
        Each fold model on every labeled example (in-sample for k-1 of them).
    embeddings, embeddings_unlabeled : ndarray of shape (N, D), (U, D) or None
        ``backend.embed`` of the labeled and unlabeled pools.
    posterior_probs, posterior_probs_unlabeled : ndarray of shape (S, N, K), (S, U, K) or None
        Posterior samples for BALD: MC-dropout passes of the full model where the
        backend has them and ``mc_passes`` asked for them, else the fold models.
    trained : bool
        False when nothing was labeled: no model, uniform probabilities, only embeddings.
    folds : ndarray of shape (N,) or None
        The fold whose model predicted each labeled example (``pred_probs``'s row).
    model_dir : str or None
        Where the model fitted on all labeled examples was exported (None: not exported).
    key : str or None
        The training key they are stored under in a campaign's cache (:func:`load_predictions`;
        None: not stored, as in a simulation).
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
    folds: np.ndarray | None = None
    model_dir: str | None = None
    key: str | None = None


def train_and_predict(
    backend,
    training: TrainingSet,
    *,
    n_classes: int,
    folds: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
    mc_passes: int = 0,
    chunk_size: int = 1 << 62,
    allocate: pool.Allocate | None = None,
    map_fits: MapFits | None = None,
):
    """k-fold out-of-sample predictions plus a model fitted on all labeled examples.

    Returns ``(Predictions, fitted)`` where ``fitted`` is the full model (for
    export). With no labeled example nothing is trained: ``fitted`` is None and
    the predictions are uniform (``trained`` False), embeddings only.
    ``mc_passes`` >= 2 asks a backend with ``mc_dropout_proba`` for that many
    MC-dropout passes as BALD's posterior samples. ``training.sample_weight`` (N,):
    each labeled example's weight in every fit that trains on it (None: equal weights).
    The unlabeled pool is predicted ``chunk_size`` texts at a time into arrays made by
    ``allocate`` (:mod:`crowdloop.tasks.pool`; default: in memory). ``map_fits``: where the
    models are fitted (:func:`crowdloop.tasks.predict.fit_models`).
    """
    texts_labeled, labels, texts_unlabeled, texts_test = (training.texts_labeled, training.labels,
                                                          training.texts_unlabeled, training.texts_test)
    say = progress or (lambda message: None)
    seconds = {}
    start = time.perf_counter()
    n_l, n_u = len(texts_labeled), len(texts_unlabeled)
    if hasattr(backend, "prepare"):  # the head: every text embedded once, in one pass, before any chunk
        backend.prepare([*texts_labeled, *texts_unlabeled, *texts_test])
    features = backend.features([*texts_labeled, *texts_test])
    x_l, x_t = features[:n_l], features[n_l:]
    seconds["features"] = time.perf_counter() - start
    predict_pool = functools.partial(pool.predict_pool, backend, texts_unlabeled, n_classes=n_classes,
                                     chunk_size=chunk_size, allocate=allocate, progress=progress)
    if not can_fit(labels):
        n_seen = len(np.unique(labels))
        why = ("nothing labeled yet: no model" if n_l == 0 else
               f"the consensus labels so far are {count(n_l, 'example')} of {count(n_seen, 'class', 'classes')}: "
               "no model until a second class is labeled")
        say(f"{why}; embedding {n_u} unlabeled examples for a cold start")
        return _untrained(n_l, n_u, n_classes, texts_test, backend, x_l, predict_pool, seconds), None

    start = time.perf_counter()
    say(f"{folds}-fold out-of-sample predictions for {n_l} labeled and {n_u} unlabeled examples, "
        f"and a model on all {n_l} labeled examples")
    # The full model is fitted beside the fold models: a backend with fit_many trains them all at once.
    oos = out_of_sample(backend, x_l, labels, n_classes=n_classes, folds=folds, seed=seed,
                        sample_weight=training.sample_weight, progress=progress, fit_full=True,
                        map_fits=map_fits)
    fitted = oos.full_model
    pooled = predict_pool(models=oos.models, full_model=fitted, mc_passes=mc_passes, seed=seed)
    seconds["fit_and_kfold"] = time.perf_counter() - start

    start = time.perf_counter()
    say(f"scoring {len(texts_test)} gold test examples with the model on all labeled examples")
    test_probs = backend.predict_proba(fitted, x_t) if len(texts_test) else np.zeros((0, n_classes))
    seconds["test"] = time.perf_counter() - start

    start = time.perf_counter()
    posterior = oos.fold_pred_probs
    if pooled.posterior is not pooled.folds:
        # the pool's passes ran chunk by chunk with its predictions (predict_pool); these are the labeled ones
        say(f"{mc_passes} MC-dropout passes over the {n_l} labeled examples")
        posterior = backend.mc_dropout_proba(fitted, x_l, passes=mc_passes, seed=seed)
    embeddings = backend.embed(fitted, x_l)
    seconds["extras"] = time.perf_counter() - start

    predictions = Predictions(
        pred_probs=oos.pred_probs,
        pred_probs_unlabeled=pooled.mean,
        fold_pred_probs_unlabeled=pooled.folds,
        test_probs=test_probs,
        backend=backend.name,
        seconds=seconds,
        fold_pred_probs=oos.fold_pred_probs,
        folds=oos.folds,
        embeddings=embeddings,
        embeddings_unlabeled=pooled.embeddings,
        posterior_probs=posterior,
        posterior_probs_unlabeled=pooled.posterior,
    )
    return predictions, fitted


def _untrained(n_labeled: int, n_unlabeled: int, n_classes: int, texts_test, backend, x_l, predict_pool,
               seconds) -> Predictions:
    """No model (nothing to tell apart yet): uniform probabilities everywhere, the embeddings of every
    example (the cold start clusters them), ``trained`` False."""
    def uniform(n):
        return np.full((n, n_classes), 1.0 / n_classes)

    return Predictions(
        pred_probs=uniform(n_labeled), pred_probs_unlabeled=uniform(n_unlabeled),
        fold_pred_probs_unlabeled=uniform(n_unlabeled)[None], test_probs=uniform(len(texts_test)),
        backend=backend.name, seconds=seconds, embeddings=backend.embed(None, x_l),
        embeddings_unlabeled=predict_pool(models=[], full_model=None).embeddings, trained=False)


def train_with_cache(cache_dir: Path, key: str, training: TrainingSet, *, model: ModelConfig, n_classes: int,
                     folds: int, seed: int, mc_passes: int = 0, chunk_size: int,
                     map_fits: MapFits | None = None) -> Path:
    """:func:`train_and_predict` against a cache folder: its predictions stored under ``key``
    (:mod:`.prediction_cache`; when they are already there, nothing runs), the embeddings cache
    of ``cache_dir`` read and extended, the full model exported to ``cache_dir/models/<key>``.
    Returns the predictions' folder; :func:`load_predictions` reads it."""
    stored = prediction_cache.folder(cache_dir, key)
    if prediction_cache.exists(cache_dir, key):
        log.info("training step cached: reusing %s", stored)
        return stored
    encoder = encoder_key(model)
    cache = embedding_cache.open_cache(cache_dir, encoder)
    backend = models_mod.load_backend(model, embedding_cache=cache, progress=log.info)
    writer = prediction_cache.Writer(cache_dir, key)
    try:
        predictions, fitted = train_and_predict(backend, training, n_classes=n_classes, folds=folds, seed=seed,
                                                progress=log.info, mc_passes=mc_passes, chunk_size=chunk_size,
                                                allocate=writer.allocate, map_fits=map_fits)
        if fitted is not None:
            model_dir = prediction_cache.model_folder(cache_dir, key)
            backend.save(fitted, model_dir)
            predictions = dataclasses.replace(predictions, model_dir=str(model_dir))
        return writer.finish({f.name: getattr(predictions, f.name) for f in dataclasses.fields(predictions)
                              if f.name != "key"}, embedding_key=encoder)
    except BaseException:
        writer.discard()
        raise


def load_predictions(cache_dir: Path, key: str) -> Predictions:
    """What :func:`train_with_cache` stored under ``key``, its arrays memory-mapped."""
    fields = prediction_cache.load(cache_dir, key)
    if fields is None:
        raise FileNotFoundError(f"no stored predictions for training key {key[:16]} in {cache_dir}")
    return Predictions(**fields, key=key)
