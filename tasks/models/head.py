"""The head backend: a frozen encoder (mean-pooled, L2-normalised embeddings, cached by
text), optionally beside hashed word n-grams, and a scikit-learn logistic regression
whose C is chosen by inner cross-validation (:mod:`.logistic`).

Pooling ``layers`` averages the token means of every encoder layer instead of taking
the last one: a sentence encoder's last layer is trained for meaning and drops
wording and tone, which the earlier layers still hold (on the politeness data a
linear probe on 200 texts went from 0.85 to 0.93 test accuracy).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import sparse

from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.models.base import check_texts, embedding_key, resolve_model_name
from crowdloop.tasks.models.logistic import HeadModel, fit_head, predict_head
from crowdloop.tasks.schema import TEXT_SEP

# Word 1- and 2-grams hashed into this many columns, counts as 1 + log(count), rows L2-normalised:
# stateless, so a text's n-gram vector never depends on which other texts were seen.
NGRAMS = {"analyzer": "word", "ngram_range": (1, 2), "n_features": 2 ** 18, "lowercase": True}


class HeadBackend:
    """Frozen encoder (+ hashed n-grams) and a logistic regression whose C is cross-validated."""

    name = "head"

    def __init__(self, model: ModelConfig, *, embedding_cache: dict | None, progress: Callable[[str], None]):
        self.config = model
        self.model_name = resolve_model_name(model.name)
        self.cache = {} if embedding_cache is None else embedding_cache
        self.progress = progress
        self._loaded = None  # (tokenizer, encoder): loaded by the first text the cache lacks

    @functools.cached_property
    def dim(self) -> int:
        """The encoder's embedding size D."""
        if self.cache:  # spares a worker whose texts are all cached importing transformers and torch
            return len(next(iter(self.cache.values())))
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(self.model_name, trust_remote_code=False).hidden_size)

    @property
    def tokenizer(self):
        return self._load()[0]

    @property
    def encoder(self):
        return self._load()[1]

    def _load(self):
        # A worker whose texts are all in the cache (a simulation's arms) never loads the encoder.
        if self._loaded is None:
            from transformers import AutoModel, AutoTokenizer

            self._loaded = (AutoTokenizer.from_pretrained(self.model_name, trust_remote_code=False),
                            AutoModel.from_pretrained(self.model_name, use_safetensors=True,
                                                      trust_remote_code=False).eval())
        return self._loaded

    def features(self, texts: Sequence[str]):
        """What ``fit`` takes: the embeddings (N, D), or with ``model.head.ngrams`` a sparse
        CSR matrix (N, D + 2**18) of the embeddings beside the texts' hashed n-grams.

        With ``model.head.pairs`` and texts that are pairs (two texts joined by
        schema.TEXT_SEP, as the importers join premise and hypothesis), the embedding part
        is :func:`pair_features` (N, 4D + 1) instead.
        """
        if self.config.head.pairs and any(TEXT_SEP in t for t in texts):
            first, second = zip(*(t.split(TEXT_SEP, 1) if TEXT_SEP in t else (t, "") for t in texts))
            dense = pair_features(self.embeddings(first), self.embeddings(second), first, second)
        else:
            dense = self.embeddings(texts)
        if not self.config.head.ngrams:
            return dense
        return sparse.hstack([sparse.csr_matrix(dense), ngram_features(texts)], format="csr")

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of shape (N, D), float32, unit norm, pooled as ``model.head.pooling`` says;
        each text not in the cache is encoded once."""
        check_texts(texts)
        pooling = self.config.head.pooling
        keys = [embedding_key(t, max_length=self.config.max_length, pooling=pooling) for t in texts]
        todo = {k: t for k, t in zip(keys, texts) if k not in self.cache}
        # Similar lengths in a batch mean little padding; the key breaks ties deterministically.
        todo = sorted(todo.items(), key=lambda item: (len(item[1]), item[0]))
        if todo:  # all cached (a simulation's worker): torch is not even imported
            import torch
        size = self.config.minibatch_size
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            batch = self.tokenizer([t for _, t in chunk], padding=True, truncation=True,
                                   max_length=self.config.max_length, return_tensors="pt")
            with torch.inference_mode():
                output = self.encoder(**batch, output_hidden_states=pooling == "layers")
                # hidden_states[0] is the token embeddings, before any layer
                hidden = (torch.stack(output.hidden_states[1:]).mean(0) if pooling == "layers"
                          else output.last_hidden_state)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=1)
            for (key, _), vector in zip(chunk, pooled.numpy().astype(np.float32)):
                self.cache[key] = vector
            done = start + len(chunk)
            if done == len(todo) or (start // size) % 20 == 0:
                self.progress(f"embedded {done}/{len(todo)} new texts")
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache[k] for k in keys])

    def fit(self, X, y: np.ndarray, *, n_classes: int, seed: int,
            sample_weight: np.ndarray | None = None) -> HeadModel:
        """:func:`fit_head` with this backend's ``model.head`` settings."""
        return fit_head(X, y, head=self.config.head, n_classes=n_classes, seed=seed, sample_weight=sample_weight)

    @property
    def fitter(self) -> Callable[..., HeadModel]:
        """``fit`` without the backend (no encoder, no cache): what a task runner ships to another process."""
        return functools.partial(fit_head, head=self.config.head)

    def predict_proba(self, fitted: HeadModel, X) -> np.ndarray:
        """Probabilities of shape (N, n_classes); classes absent from training get ~0."""
        return predict_head(fitted, X)

    def embed(self, fitted: HeadModel | None, X) -> np.ndarray:
        """Embeddings (N, D) for the embedding strategies: the frozen encoder's, the first D columns of ``X``
        (for pairs, the first text's)."""
        if sparse.issparse(X):
            X = X[:, :self.dim].toarray()
        return np.asarray(X, dtype=np.float32)

    def save(self, fitted: HeadModel, directory: Path) -> None:
        """head.joblib ({"classifier": sklearn model or None for one class, "columns": the feature
        columns it reads or None}) + encoder.json (how to build those features)."""
        import joblib

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump({"classifier": fitted.classifier, "columns": fitted.columns}, directory / "head.joblib")
        pooling = {"layers": "mean over tokens of the mean over layers 1..L, L2",
                   "last": "mean over tokens of the last layer, L2"}[self.config.head.pooling]
        meta = {"encoder": self.model_name, "max_length": self.config.max_length, "pooling": pooling,
                "pairs": ("texts split on the separator; [u, v, |u-v|, u*v] + word overlap"
                          if self.config.head.pairs else None),
                "ngrams": ({**NGRAMS, "counts": "1 + log(count)", "norm": "l2", "after": "the embedding columns"}
                           if self.config.head.ngrams else None),
                "C": fitted.C, "n_classes": fitted.n_classes, "classes": fitted.classes.tolist()}
        (directory / "encoder.json").write_text(json.dumps(meta, indent=2))


def pair_features(u: np.ndarray, v: np.ndarray, first: Sequence[str], second: Sequence[str]) -> np.ndarray:
    """A pair of texts as one vector, shape (N, 4D + 1): ``[u, v, |u - v|, u * v]`` of their
    embeddings (N, D) each (the sentence-pair encoding of InferSent and Sentence-BERT), and
    the share of the second text's words that the first contains (the lexical-overlap
    baseline of textual entailment)."""
    words = (lambda text: set(re.findall(r"\w+", text.lower())))
    overlap = np.array([len(words(b) & words(a)) / max(len(words(b)), 1) for a, b in zip(first, second)])
    return np.hstack([u, v, np.abs(u - v), u * v, overlap[:, None]]).astype(np.float32)


def ngram_features(texts: Sequence[str]) -> sparse.csr_matrix:
    """Hashed word 1-2-grams of shape (N, 2**18): 1 + log(count), each row L2-normalised."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import normalize

    counts = HashingVectorizer(**NGRAMS, alternate_sign=False, norm=None).transform(list(texts))
    counts.data = 1.0 + np.log(counts.data)
    return normalize(counts).tocsr()
