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
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import sparse

from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.embedding_cache import EmbeddingCache, Rows
from crowdloop.tasks.models.base import check_texts
from crowdloop.tasks.models.logistic import HeadModel, fit_head, predict_head
from crowdloop.tasks.models.encoder import FrozenEncoder
from crowdloop.tasks.schema import TEXT_SEP

# Word 1- and 2-grams hashed into this many columns, counts as 1 + log(count), rows L2-normalised:
# stateless, so a text's n-gram vector never depends on which other texts were seen.
NGRAMS = {"analyzer": "word", "ngram_range": (1, 2), "n_features": 2 ** 18, "lowercase": True}
# Texts whose n-gram rows a backend keeps (NgramRows): a simulation's pool, seen every round, fits;
# a million-text pool does not, and is hashed chunk by chunk as it is predicted.
NGRAM_MEMO_TEXTS = 100_000


class HeadBackend:
    """Frozen encoder (+ hashed n-grams) and a logistic regression whose C is cross-validated."""

    name = "head"

    def __init__(self, model: ModelConfig, *, embedding_cache: EmbeddingCache | None,
                 progress: Callable[[str], None]):
        self.config = model
        self.frozen = FrozenEncoder(model, cache=embedding_cache, progress=progress)
        self.model_name, self.dim, self.cache = self.frozen.model_name, self.frozen.dim, self.frozen.cache
        self.pairs: bool | None = None  # set by prepare() for a whole training set; None: decided per call
        self.ngram_rows = NgramRows()

    @property
    def encoder(self):
        """The encoder (a transformers model), loaded on first use."""
        return self.frozen.encoder

    @property
    def tokenizer(self):
        return self.frozen.tokenizer

    def prepare(self, texts: Sequence[str]) -> None:
        """Encode every text of ``texts`` the cache lacks (one progress bar, stored as it goes), and
        fix the feature layout (pairs or not) for :meth:`features` of any part of them."""
        check_texts(texts)
        self.pairs = self._pairs(texts)
        for part in (_split_pairs(texts) if self.pairs else (texts,)):
            self.frozen.encode_missing(part, self.frozen.keys(part))

    def features(self, texts: Sequence[str]):
        """What ``fit`` takes: the embeddings (N, D), or with ``model.head.ngrams`` a sparse
        CSR matrix (N, D + 2**18) of the embeddings beside the texts' hashed n-grams.

        With ``model.head.pairs`` and texts that are pairs (two texts joined by
        schema.TEXT_SEP, as the importers join premise and hypothesis), the embedding part
        is :func:`pair_features` (N, 4D + 1) instead.
        """
        if self._uses_pairs(texts):
            first, second = _split_pairs(texts)
            dense = pair_features(self.embeddings(first), self.embeddings(second), first, second)
        else:
            dense = self.embeddings(texts)
        if not self.config.head.ngrams:
            return dense
        return sparse.hstack([sparse.csr_matrix(dense), self.ngram_rows.features(texts)], format="csr")

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of shape (N, D), float32, unit norm, pooled as ``model.head.pooling`` says;
        each text not in the cache is encoded once."""
        return self.frozen.embeddings(texts)

    def frozen_embeddings(self, texts: Sequence[str]) -> Rows:
        """What :meth:`embed` gives for the features of ``texts``, as rows of the cache read only when
        used (N, D): the encoder is frozen, so a pool's embeddings need no copy."""
        first = _split_pairs(texts)[0] if self._uses_pairs(texts) else texts
        return self.frozen.rows(first)

    def _pairs(self, texts: Sequence[str]) -> bool:
        return self.config.head.pairs and any(TEXT_SEP in t for t in texts)

    def _uses_pairs(self, texts: Sequence[str]) -> bool:
        """The layout :meth:`prepare` fixed, else what ``texts`` themselves call for."""
        return self.pairs if self.pairs is not None else self._pairs(texts)

    def fit(self, X, y: np.ndarray, *, n_classes: int, seed: int,
            sample_weight: np.ndarray | None = None, C: float | None = None) -> HeadModel:
        """:func:`fit_head` with this backend's ``model.head`` settings (``C``: no search)."""
        return fit_head(X, y, head=self.config.head, n_classes=n_classes, seed=seed, sample_weight=sample_weight,
                        C=C)

    @staticmethod
    def fold_settings(full: HeadModel) -> dict:
        """What the k fold models take from the model on all labeled examples: its C, which inner
        cross-validation chose over every labeled example (tasks/predict.py)."""
        return {"C": full.C}

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


def _split_pairs(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each text's two sides (schema.TEXT_SEP between them; a text without one: itself and "")."""
    if not len(texts):
        return [], []
    first, second = zip(*(t.split(TEXT_SEP, 1) if TEXT_SEP in t else (t, "") for t in texts))
    return list(first), list(second)


def ngram_features(texts: Sequence[str]) -> sparse.csr_matrix:
    """Hashed word 1-2-grams of shape (N, 2**18): 1 + log(count), each row L2-normalised."""
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import normalize

    counts = HashingVectorizer(**NGRAMS, alternate_sign=False, norm=None).transform(list(texts))
    counts.data = 1.0 + np.log(counts.data)
    return normalize(counts).tocsr()


class NgramRows:
    """:func:`ngram_features`, each text hashed once: the rows of up to ``limit`` texts are kept, so
    the rounds of a simulation (and the arms sharing a process) do not hash the same pool again
    every round. A call that would keep more than ``limit`` texts is computed without keeping any.
    Thread-safe: arms on a multi-threaded Dask worker share one backend."""

    def __init__(self, limit: int = NGRAM_MEMO_TEXTS):
        self.limit = limit
        self.index: dict[str, int] = {}  # text -> its row of ``matrix``
        self.matrix = sparse.csr_matrix((0, NGRAMS["n_features"]))
        self.lock = threading.Lock()

    def features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The rows :func:`ngram_features` gives for ``texts``, shape (N, 2**18)."""
        with self.lock:
            new = [t for t in dict.fromkeys(texts) if t not in self.index]
            if len(self.index) + len(new) > self.limit:
                return ngram_features(texts)
            if new:
                self.matrix = sparse.vstack([self.matrix, ngram_features(new)], format="csr")
                self.index.update(zip(new, range(len(self.index), len(self.index) + len(new))))
            rows = np.fromiter((self.index[t] for t in texts), dtype=np.int64, count=len(texts))
            return self.matrix[rows]
