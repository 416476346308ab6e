"""Texts tokenised once per round, and the batches cut from them (dynamic padding).

The fine-tune backend's features are :class:`Tokens`: every text tokenised once,
truncated to ``model.max_length``, kept as an id matrix with each row's length. The k
fold models, the full model and every prediction index these rows (``tokens[rows]``
is a row subset, never a re-tokenisation), and each batch is padded only to its own
longest row, not to ``max_length``.

Inference batches are sorted by length, so they pad little. Training batches are not:
where length goes with the class (polite requests run longer), length-sorted batches
are batches of one class, and a model trained on them learns the class prior and
little else (a 40-step toy fine-tune stayed at chance that way; it learns with shuffled
batches). Training is bound by per-step overhead, not by the padding, anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

@dataclass(frozen=True)
class Tokens:
    """Token ids of N texts.

    Attributes
    ----------
    ids : ndarray of shape (N, L), int64
        Right-padded token ids; L is the longest row (at most ``model.max_length``).
    lengths : ndarray of shape (N,), int64
        Tokens of each row, special tokens included; positions from there on are padding.
    """

    ids: np.ndarray
    lengths: np.ndarray

    @property
    def shape(self) -> tuple[int]:
        return (len(self.lengths),)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, rows) -> "Tokens":
        """The rows ``rows`` (an index array, a boolean mask or a slice) as Tokens."""
        rows = np.atleast_1d(np.arange(len(self))[rows])
        return Tokens(ids=self.ids[rows], lengths=self.lengths[rows])


def tokenize(tokenizer, texts: Sequence[str], *, max_length: int) -> Tokens:
    """Tokens of ``texts`` (N,), each truncated to ``max_length`` tokens, in one tokenizer call."""
    if len(texts) == 0:
        return Tokens(ids=np.zeros((0, 1), dtype=np.int64), lengths=np.zeros(0, dtype=np.int64))
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, padding="longest",
                        padding_side="right", return_attention_mask=True, return_tensors="np")
    return Tokens(ids=encoded["input_ids"].astype(np.int64),
                  lengths=encoded["attention_mask"].sum(axis=1).astype(np.int64))


def training_batches(n_rows: int, *, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Which of ``n_rows`` training rows each of ``steps`` batches holds.

    Returns
    -------
    ndarray of shape (steps, batch_size), int
        Row positions 0..n_rows-1; -1 in the empty slots of an epoch's short last batch.

    Every epoch is a fresh permutation from ``np.random.default_rng(seed)``, cut into
    batches in order: an epoch uses every row once.
    """
    if n_rows == 0:
        raise ValueError("a fine-tune needs at least one training row.")
    rng = np.random.default_rng(seed)
    out = np.full((steps, batch_size), -1, dtype=np.int64)
    step = 0
    while step < steps:
        order = rng.permutation(n_rows)
        for start in range(0, n_rows, batch_size):
            if step == steps:
                break
            batch = order[start:start + batch_size]
            out[step, :len(batch)] = batch
            step += 1
    return out


def inference_batches(lengths: np.ndarray, *, batch_size: int) -> list[np.ndarray]:
    """Row positions of each inference batch, longest rows first: a batch pads only to its own
    longest row, and running out of memory shows in the first batch, not the last."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
