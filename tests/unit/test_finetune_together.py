"""The fine-tune backend's k fold models and full model trained together (tiny random BERT, CPU).

Dropout off where results are compared: the stacked forward draws dropout masks for all
models at once, so with dropout on the same seeds give other (equally distributed) masks.
"""

import dataclasses
import json
import os
import shutil
import sys

import numpy as np
import pytest

from crowdloop.tasks import models
from crowdloop.tasks.models import stacked, tokens
from crowdloop.tasks.predict import fold_assignment

# Texts of different lengths, so batches and steps pad to different widths.
TEXTS = [f"i like apple pie number {i}" + " very much" * (i % 4) for i in range(15)] + \
        [f"the zebra runs far {i}" + " and fast" * (i % 3) for i in range(15)]
LABELS = np.array([0] * 15 + [1] * 15)


@pytest.fixture(scope="module")
def no_dropout_dir(tiny_model_dir, tmp_path_factory):
    path = shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("tiny-bert-no-dropout") / "m")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.0,
                                                  "attention_probs_dropout_prob": 0.0}))
    return path


def _backend(cfg, name, *, progress=None, **changes):
    finetune = dataclasses.replace(cfg.model.finetune, **({"steps": 8, "learning_rate": 1e-3,
                                                            "warmup_ratio": 0.25} | changes))
    model = dataclasses.replace(cfg.model, backend="finetune", name=str(name), finetune=finetune)
    return models.load_backend(model, progress=progress)


def _fold_subsets(seed=0):
    folds = fold_assignment(LABELS, folds=3, seed=seed)
    return [np.flatnonzero(folds != f) for f in range(3)] + [np.arange(len(LABELS))]


def test_training_together_predicts_as_training_one_after_another(cfg, no_dropout_dir):
    backend = _backend(cfg, no_dropout_dir)
    X = backend.features(TEXTS)
    weights = np.linspace(0.2, 1.0, len(TEXTS))
    subsets, seeds = _fold_subsets(), [1, 2, 3, 0]
    together = backend.fit_many(X, LABELS, subsets, n_classes=2, seeds=seeds, sample_weight=weights)
    for model, rows, seed in zip(together, subsets, seeds):
        alone = backend.fit(X[rows], LABELS[rows], n_classes=2, seed=seed, sample_weight=weights[rows])
        np.testing.assert_allclose(backend.predict_proba(model, X), backend.predict_proba(alone, X), atol=1e-5)
    # the models did train, and differently: their rows and seeds differ
    first, second = (backend.predict_proba(m, X) for m in together[:2])
    assert not np.allclose(first, second, atol=1e-3)


def test_each_model_trained_together_sees_only_its_own_rows(cfg, no_dropout_dir):
    backend = _backend(cfg, no_dropout_dir)
    X = backend.features(TEXTS)
    subsets, seeds = _fold_subsets(), [1, 2, 3, 0]
    plan = stacked.schedule(X.lengths, subsets, steps=8, batch_size=backend.config.minibatch_size, seeds=seeds)
    for m, rows in enumerate(subsets):
        assert set(plan.rows[:, m].ravel()) == set(rows)  # every own row, nothing else
    assert np.allclose(plan.weights.sum(axis=2), 1.0)  # each model's loss: a weighted mean over its batch

    # Relabel every row fold model 0 never trains on: model 0 must not change, the others must.
    held = np.setdiff1d(np.arange(len(LABELS)), subsets[0])
    relabeled = LABELS.copy()
    relabeled[held] = 1 - relabeled[held]
    before = backend.fit_many(X, LABELS, subsets, n_classes=2, seeds=seeds)
    after = backend.fit_many(X, relabeled, subsets, n_classes=2, seeds=seeds)
    np.testing.assert_allclose(backend.predict_proba(before[0], X), backend.predict_proba(after[0], X), atol=1e-6)
    for m in (1, 2, 3):
        assert not np.allclose(backend.predict_proba(before[m], X), backend.predict_proba(after[m], X), atol=1e-4)


def _stacked_inputs(backend, X, subsets, seeds):
    import torch

    built = backend._module(2)
    plan = stacked.schedule(X.lengths, subsets, steps=backend.config.finetune.steps,
                            batch_size=backend.config.minibatch_size, seeds=seeds)
    return built.module, backend._initial_params(built, seeds), torch.as_tensor(X.ids), \
        torch.as_tensor(X.lengths), torch.as_tensor(LABELS), plan


def test_the_vmapped_forward_trains_as_one_forward_per_model(cfg, no_dropout_dir):
    backend = _backend(cfg, no_dropout_dir)
    X = backend.features(TEXTS)
    inputs = _stacked_inputs(backend, X, _fold_subsets(), [1, 2, 3, 0])
    results = [stacked.train(*inputs, config=backend.config.finetune, bf16=False, progress=lambda m: None,
                             vmapped=vmapped) for vmapped in (True, False)]
    for name, value in results[0].items():
        np.testing.assert_allclose(value.numpy(), results[1][name].numpy(), atol=1e-5, err_msg=name)
    assert not np.allclose(results[0]["classifier.weight"].numpy(), inputs[1]["classifier.weight"].numpy())


def test_a_model_that_cannot_run_vmapped_trains_with_one_forward_per_model(cfg, no_dropout_dir, monkeypatch, caplog):
    import torch.func

    backend = _backend(cfg, no_dropout_dir, steps=2)
    inputs = _stacked_inputs(backend, backend.features(TEXTS), _fold_subsets(), [1, 2, 3, 0])
    expected = stacked.train(*inputs, config=backend.config.finetune, bf16=False, progress=lambda m: None,
                             vmapped=False)

    def refuse(*args, **kwargs):
        raise RuntimeError("vmap: It looks like you're attempting to use a Tensor in some data-dependent control flow.")

    monkeypatch.setattr(torch.func, "vmap", refuse)
    with caplog.at_level("WARNING", logger="crowdloop"):
        got = stacked.train(*inputs, config=backend.config.finetune, bf16=False, progress=lambda m: None)
    assert "cannot run vmapped (RuntimeError: vmap: It looks like" in caplog.text
    for name, value in got.items():
        np.testing.assert_allclose(value.numpy(), expected[name].numpy(), atol=1e-6, err_msg=name)


def test_bf16_autocast_runs_through_the_stacked_forward(cfg, no_dropout_dir):
    """CUDA trains under bf16 autocast; CPU autocast checks the stacked forward and loss compose with it."""
    backend = _backend(cfg, no_dropout_dir, steps=4)
    X = backend.features(TEXTS)
    inputs = _stacked_inputs(backend, X, _fold_subsets(), [1, 2, 3, 0])
    fp32, bf16 = (stacked.train(*inputs, config=backend.config.finetune, bf16=flag, progress=lambda m: None)
                  for flag in (False, True))
    head = bf16["classifier.weight"].numpy()
    assert np.isfinite(head).all() and not np.allclose(head, fp32["classifier.weight"].numpy(), atol=0)
    np.testing.assert_allclose(head, fp32["classifier.weight"].numpy(), atol=5e-3)  # bf16 rounding, not a bug


def test_training_reads_nothing_back_from_the_device_except_the_progress_lines(cfg, no_dropout_dir, monkeypatch):
    import torch

    messages, reads = [], []
    backend = _backend(cfg, no_dropout_dir, steps=10, progress=messages.append)
    X = backend.features(TEXTS)
    backend._module(2)  # built before counting: loading weights may read tensors

    def counting(name, real):
        def read(self, *args, **kwargs):
            # AdamW's step counter is a host tensor even on CUDA (the fused kernel never reads it back)
            if not sys._getframe(1).f_code.co_filename.endswith(os.path.join("torch", "optim", "optimizer.py")):
                reads.append(name)
            return real(self, *args, **kwargs)
        return read

    for method in ("item", "tolist", "__bool__", "__int__", "__float__", "numpy", "cpu"):
        monkeypatch.setattr(torch.Tensor, method, counting(method, getattr(torch.Tensor, method)))
    backend.fit_many(X, LABELS, _fold_subsets(), n_classes=2, seeds=[1, 2, 3, 0])
    monkeypatch.undo()
    steps = [m for m in messages if m.startswith("fine-tune step")]
    assert len(steps) == 5 and steps[-1].startswith("fine-tune step 10/10, 4 models: loss ")
    assert reads == ["tolist"] * len(steps)


def test_pool_predictions_come_in_length_sorted_batches_with_progress(cfg, no_dropout_dir, monkeypatch):
    import functools

    from crowdloop.tasks import progress
    from crowdloop.tasks.models import finetune

    messages = []
    backend = _backend(cfg, no_dropout_dir, steps=2, progress=messages.append)
    X = backend.features(TEXTS)
    fitted = backend.fit(X, LABELS, n_classes=2, seed=0)
    whole = backend.predict_proba(fitted, X)
    small = _backend(cfg, no_dropout_dir, steps=2, inference_batch_size=4, progress=messages.append)
    small_fitted = small.fit(X, LABELS, n_classes=2, seed=0)
    np.testing.assert_allclose(small.predict_proba(small_fitted, X), whole, atol=1e-5)  # batching changes nothing
    np.testing.assert_allclose(small.embed(small_fitted, X), backend.embed(fitted, X), atol=1e-5)
    # a quick prediction says nothing (a pool in chunks said a line per chunk, model and 10 batches)
    assert not any(m.startswith("predict") for m in messages)
    monkeypatch.setattr(finetune, "progress_bar", functools.partial(progress.bar, every=0))  # a slow one
    small.predict_proba(small_fitted, X)
    said = [m for m in messages if m.startswith("predicting: ")]
    assert len(said) == 8 and said[0].startswith("predicting: 4/30 texts, ") and "left" in said[0]
    assert said[-1].startswith("predicting: 30/30 texts, ")


def test_tokens_are_cut_once_and_batches_pad_to_their_longest_row(cfg, tiny_model_dir):
    backend = _backend(cfg, tiny_model_dir)
    X = backend.features(TEXTS)
    assert X.ids.shape == (30, X.lengths.max()) and X.lengths.max() <= cfg.model.max_length
    sub = X[np.array([3, 0])]
    assert np.array_equal(sub.ids, X.ids[[3, 0]]) and np.array_equal(X[LABELS == 1].lengths, X.lengths[15:])
    assert len(X[:0]) == 0 and X[5].shape == (1,)
    truncated = backend.features(["word " * 100])
    assert truncated.lengths[0] == cfg.model.max_length

    batches = tokens.inference_batches(X.lengths, batch_size=8)
    assert sorted(np.concatenate(batches)) == list(range(30))
    assert [X.lengths[b].max() for b in batches] == sorted((X.lengths[b].max() for b in batches), reverse=True)


def test_training_batches_use_every_row_once_an_epoch_and_follow_the_seed():
    batches = tokens.training_batches(10, steps=7, batch_size=4, seed=3)
    assert batches.shape == (7, 4)
    first_epoch = batches[:3].ravel()
    assert sorted(first_epoch[first_epoch >= 0]) == list(range(10)) and (first_epoch == -1).sum() == 2
    assert np.array_equal(batches, tokens.training_batches(10, steps=7, batch_size=4, seed=3))
    assert not np.array_equal(batches, tokens.training_batches(10, steps=7, batch_size=4, seed=4))
    with pytest.raises(ValueError, match="at least one training row"):
        tokens.training_batches(0, steps=3, batch_size=4, seed=0)
