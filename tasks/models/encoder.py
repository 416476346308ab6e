"""The head's frozen encoder: texts -> pooled, unit-norm embeddings, each encoded once into the cache.

The encoder (and with it torch) loads only when a text is not cached yet: a round whose
texts were all embedded before reads them from the cache and never imports torch. New texts
are encoded in minibatches sorted by length and stored every :data:`STORE_EVERY` texts, so
an interrupted first embedding (an hour for a million texts on a CPU) keeps what it finished.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from crowdloop.tasks import progress as progress_mod
from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.embedding_cache import KEY_DTYPE, EmbeddingCache, Rows
from crowdloop.tasks.models.base import check_texts, check_tokenizer, checked_model, embedding_keys, loading

# New embeddings go into the cache this many texts at a time (a chunk file of 25 MB at D = 384).
STORE_EVERY = 16384


class FrozenEncoder:
    """``model.name``'s encoder, pooled as ``model.head.pooling`` says, behind the embeddings cache."""

    def __init__(self, model: ModelConfig, *, cache: EmbeddingCache | None, progress: Callable[[str], None]):
        self.config = model
        self.model_name = checked_model(model)
        self.dim = _hidden_size(self.model_name)
        self.cache = EmbeddingCache() if cache is None else cache
        self.progress = progress

    @functools.cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        with loading(self.model_name):
            tokenizer = AutoTokenizer.from_pretrained(self.model_name, trust_remote_code=False)
        check_tokenizer(tokenizer, vocab_size=self.encoder.config.vocab_size, name=self.model_name)
        return tokenizer

    @functools.cached_property
    def encoder(self):
        from transformers import AutoModel

        with loading(self.model_name):
            model = AutoModel.from_pretrained(self.model_name, use_safetensors=True, trust_remote_code=False)
        return model.eval()

    def keys(self, texts: Sequence[str]) -> np.ndarray:
        """The cache keys of ``texts``, shape (N,) (models.base.embedding_keys)."""
        return embedding_keys(texts, max_length=self.config.max_length, pooling=self.config.head.pooling)

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of shape (N, D), float32, unit norm; each text not in the cache is encoded once."""
        check_texts(texts)
        keys = self.keys(texts)
        self.encode_missing(texts, keys)
        return self.cache.get(keys, dim=self.dim)

    def rows(self, texts: Sequence[str]) -> Rows:
        """The embeddings of ``texts`` (N, D) as rows of the cache, read only when used."""
        keys = self.keys(texts)
        self.encode_missing(texts, keys)
        return Rows(self.cache, keys, self.dim)

    def encode_missing(self, texts: Sequence[str], keys: np.ndarray) -> None:
        """Encode the texts whose key (``keys``, (N,)) the cache lacks, in minibatches, adding them to
        the cache every :data:`STORE_EVERY` texts, with a progress bar."""
        absent = self.cache.find(keys) < 0
        todo = dict(zip(keys[absent].tolist(), np.asarray(texts, dtype=object)[absent]))
        if not todo:
            return
        # Similar lengths in a batch mean little padding; the key breaks ties deterministically.
        todo = sorted(todo.items(), key=lambda item: (len(item[1]), item[0]))
        size = self.config.minibatch_size
        self.progress(f"embedding {len(todo)} new texts")
        done_keys, done_vectors = [], []
        with progress_mod.bar(len(todo), "embedding", unit="text", say=self.progress) as bar:
            for start in range(0, len(todo), size):
                chunk = todo[start:start + size]
                done_keys += [k for k, _ in chunk]
                done_vectors.append(self._encode([t for _, t in chunk]))
                if len(done_keys) >= STORE_EVERY or start + size >= len(todo):
                    self.cache.add(np.array(done_keys, dtype=KEY_DTYPE), np.concatenate(done_vectors))
                    done_keys, done_vectors = [], []
                bar.update(len(chunk))

    def _encode(self, texts: list[str]) -> np.ndarray:
        """One minibatch: mean over tokens (of every layer's states, or the last one's), L2-normalised, (B, D)."""
        import torch

        pooling = self.config.head.pooling
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                               return_tensors="pt")
        with torch.inference_mode():
            output = self.encoder(**batch, output_hidden_states=pooling == "layers")
            # hidden_states[0] is the token embeddings, before any layer
            hidden = (torch.stack(output.hidden_states[1:]).mean(0) if pooling == "layers"
                      else output.last_hidden_state)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled.numpy().astype(np.float32)


def _hidden_size(name: str) -> int:
    """The encoder's embedding size D, from a local model's config.json (transformers' AutoConfig
    would import torch) or, for a hub id, from AutoConfig."""
    config = Path(name) / "config.json"
    if config.is_file() and "hidden_size" in (values := json.loads(config.read_text())):
        return int(values["hidden_size"])
    from transformers import AutoConfig

    with loading(name):
        return int(AutoConfig.from_pretrained(name, trust_remote_code=False).hidden_size)
