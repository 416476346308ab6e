"""A pool predicted in chunks, its predictions stored memory-mapped, its embeddings encoded once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from crowdloop.tasks import embedding_cache, models, pool, prediction_cache, train
from crowdloop.tasks.embedding_cache import Rows
from crowdloop.tasks.models import encoder

WORDS = ["apple", "pie", "zebra", "runs", "far", "please", "help", "now", "thanks", "billing"]


def _texts(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(2, 9))) + f" {i}" for i in range(n)]


def _training(n_labeled=24, n_pool=40, n_test=6):
    return train.TrainingSet(texts_labeled=_texts(n_labeled, 0), labels=np.arange(n_labeled) % 3,
                             texts_unlabeled=_texts(n_pool, 1), texts_test=_texts(n_test, 2),
                             sample_weight=np.linspace(0.5, 1, n_labeled))


def _head_cfg(cfg):
    return dataclasses.replace(cfg.model, backend="head",
                               head=dataclasses.replace(cfg.model.head, C_grid=(0.1, 10.0), inner_folds=2))


FIELDS = ("pred_probs", "pred_probs_unlabeled", "fold_pred_probs_unlabeled", "test_probs", "fold_pred_probs",
          "embeddings", "embeddings_unlabeled", "posterior_probs", "posterior_probs_unlabeled", "folds")


class _Shift:
    """A fake backend: a text's feature is its number; model m predicts class (x + m) % 3 with 0.7."""

    def features(self, texts):
        return np.array([float(t) for t in texts])

    def predict_proba(self, model, x):
        probs = np.full((len(x), 3), 0.15)
        probs[np.arange(len(x)), (x.astype(int) + model) % 3] = 0.7
        return probs

    def embed(self, model, x):
        return x[:, None].astype(np.float32)


@pytest.mark.parametrize("chunk_size", [1, 3, 100])
def test_every_fold_model_predicts_every_pool_text_and_the_mean_is_theirs(chunk_size):
    texts = [str(i) for i in range(7)]
    out = pool.predict_pool(_Shift(), texts, models=[0, 1], full_model=None, n_classes=3, chunk_size=chunk_size)
    x = np.arange(7)
    assert out.folds.shape == (2, 7, 3)
    assert (out.folds[0].argmax(axis=1) == x % 3).all() and (out.folds[1].argmax(axis=1) == (x + 1) % 3).all()
    np.testing.assert_allclose(out.mean, out.folds.mean(axis=0))
    assert out.posterior is out.folds  # no MC dropout asked: the committee is the fold models
    np.testing.assert_array_equal(np.asarray(out.embeddings)[:, 0], x)


@pytest.mark.parametrize("backend_name", ["head", "finetune"])
def test_a_pool_predicted_in_chunks_is_the_pool_predicted_at_once(cfg, backend_name):
    model = _head_cfg(cfg) if backend_name == "head" else dataclasses.replace(cfg.model, backend="finetune")
    training = _training()
    results = []
    for chunk_size in (10 ** 6, 7):
        backend = models.load_backend(model)
        results.append(train.train_and_predict(backend, training, n_classes=3, folds=3, seed=0,
                                               chunk_size=chunk_size)[0])
    whole, chunked = results
    for name in FIELDS:
        a, b = np.asarray(getattr(whole, name)), np.asarray(getattr(chunked, name))
        assert a.shape == b.shape, name
        if backend_name == "head":  # each row is its own sparse product: bit for bit the same
            assert np.array_equal(a, b), name
        else:  # other batches, other padding: the same up to float rounding
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=name)
    if backend_name == "head":
        assert isinstance(chunked.embeddings_unlabeled, Rows)  # the pool's embeddings stay in the cache


def test_predictions_are_stored_memory_mapped_and_an_unchanged_training_set_trains_nothing(cfg, tmp_path,
                                                                                          monkeypatch):
    calls = []
    real = train.train_and_predict
    monkeypatch.setattr(train, "train_and_predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    training, model = _training(), _head_cfg(cfg)
    kwargs = dict(model=model, n_classes=3, folds=3, seed=0, chunk_size=16)
    stored = train.train_with_cache(tmp_path, "k" * 64, training, **kwargs)
    assert train.train_with_cache(tmp_path, "k" * 64, training, **kwargs) == stored and calls == [1]

    loaded = train.load_predictions(tmp_path, "k" * 64)
    direct, _ = real(models.load_backend(model), training, n_classes=3, folds=3, seed=0)
    for name in FIELDS:
        assert np.array_equal(np.asarray(getattr(loaded, name)), np.asarray(getattr(direct, name))), name
    assert isinstance(loaded.pred_probs_unlabeled, np.memmap) and isinstance(loaded.embeddings_unlabeled, Rows)
    assert loaded.posterior_probs_unlabeled is loaded.fold_pred_probs_unlabeled  # stored once
    assert loaded.trained and loaded.backend == "head" and (tmp_path / "models").is_dir()
    loaded.pred_probs_unlabeled[0, 0] = 5.0  # copy-on-write: the stored file stays as it was
    assert train.load_predictions(tmp_path, "k" * 64).pred_probs_unlabeled[0, 0] < 1

    for key in "abcdef":
        train.train_with_cache(tmp_path, key * 64, training, **kwargs)
    kept = sorted(p.name for p in (tmp_path / "predictions").iterdir())
    assert len(kept) == prediction_cache.KEPT and "k" * 16 not in kept
    assert train.train_with_cache(tmp_path, "k" * 64, training, **kwargs) == stored and len(calls) == 8


def test_a_killed_training_step_leaves_no_predictions_behind(cfg, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "out_of_sample", broken)
    with pytest.raises(KeyboardInterrupt):
        train.train_with_cache(tmp_path, "k" * 64, _training(), model=_head_cfg(cfg), n_classes=3, folds=3, seed=0,
                               chunk_size=16)
    assert prediction_cache.load(tmp_path, "k" * 64) is None
    assert list((tmp_path / "predictions").iterdir()) == []


def test_an_interrupted_first_embedding_keeps_what_it_finished_and_encodes_only_the_rest(cfg, tmp_path,
                                                                                        monkeypatch):
    model = dataclasses.replace(_head_cfg(cfg), minibatch_size=4)
    monkeypatch.setattr(encoder, "STORE_EVERY", 8)  # a chunk file every 2 minibatches
    texts = _texts(40, 3)
    backend = models.load_backend(model, embedding_cache=embedding_cache.open_cache(tmp_path, "enc"))
    real, calls = backend.encoder.forward, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # the user gives up in the 5th minibatch
        return real(*args, **kwargs)

    monkeypatch.setattr(backend.encoder, "forward", failing)
    with pytest.raises(KeyboardInterrupt):
        backend.prepare(texts)
    assert len(embedding_cache.open_cache(tmp_path, "enc")) == 16  # 2 chunks of 8 were stored

    again = models.load_backend(model, embedding_cache=embedding_cache.open_cache(tmp_path, "enc"))
    real_again, calls_again = again.encoder.forward, []
    monkeypatch.setattr(again.encoder, "forward", lambda *a, **k: calls_again.append(1) or real_again(*a, **k))
    again.prepare(texts)
    assert len(calls_again) == 6  # the 24 texts left, 4 a minibatch
    fresh = models.load_backend(model)
    np.testing.assert_allclose(again.embeddings(texts), fresh.embeddings(texts), atol=1e-6)


def test_a_cached_round_imports_no_torch_or_sklearn_and_a_retrain_on_cached_embeddings_no_torch(cfg, tmp_path):
    """In a fresh process: reading stored predictions back imports none of the heavy libraries
    (torch alone takes seconds), and training again on texts whose embeddings are all cached
    (the next round, new labels) loads no encoder, so no torch either."""
    import pickle
    import subprocess
    import sys

    training, model = _training(), _head_cfg(cfg)
    kwargs = dict(model=model, n_classes=3, folds=3, seed=0, chunk_size=16)
    train.train_with_cache(tmp_path, "k" * 64, training, **kwargs)
    relabeled = dataclasses.replace(training, labels=(training.labels + 1) % 3)
    script = (
        "import pickle, sys\n"
        "from crowdloop.tasks import train\n"
        f"training, relabeled, kwargs = pickle.loads({pickle.dumps((training, relabeled, kwargs))!r})\n"
        "heavy = lambda: sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules)\n"
        f"train.train_with_cache({str(tmp_path)!r}, 'k' * 64, training, **kwargs)\n"
        f"assert train.load_predictions({str(tmp_path)!r}, 'k' * 64).pred_probs_unlabeled.shape == (40, 3)\n"
        "print(heavy())\n"
        f"train.train_with_cache({str(tmp_path)!r}, 'r' * 64, relabeled, **kwargs)\n"
        "print(heavy())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    cached, retrained = out.stdout.split("\n")[:2]
    assert cached == "[]"
    assert "sklearn" in retrained and "torch" not in retrained  # it did train, with no encoder loaded


def test_exported_models_go_with_their_pruned_predictions(cfg, tmp_path, monkeypatch):
    """One model folder per trained round would grow without end (90 MB a fine-tuned MiniLM):
    a model is kept as long as its predictions are."""
    monkeypatch.setattr(prediction_cache, "KEPT", 2)
    kwargs = dict(model=_head_cfg(cfg), n_classes=3, folds=3, seed=0, chunk_size=16)
    for key in "abc":
        train.train_with_cache(tmp_path, key * 64, _training(), **kwargs)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["b" * 16, "c" * 16]
    assert str(tmp_path / "models" / ("c" * 16)) == train.load_predictions(tmp_path, "c" * 64).model_dir


def test_the_mc_dropout_line_counts_the_examples_it_passes_over(cfg):
    """The pool's MC-dropout passes run with its predictions, chunk by chunk; the line said
    'over 64 pool examples' (labeled + pool) before passing over the 24 labeled ones only."""
    messages = []
    backend = models.load_backend(dataclasses.replace(cfg.model, backend="finetune"))
    predictions, _ = train.train_and_predict(backend, _training(), n_classes=3, folds=3, seed=0, mc_passes=2,
                                             progress=messages.append)
    assert predictions.posterior_probs.shape == (2, 24, 3) and predictions.posterior_probs_unlabeled.shape == (2, 40, 3)
    assert "2 MC-dropout passes over the 24 labeled examples" in messages
