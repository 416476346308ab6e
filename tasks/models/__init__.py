"""Text classifier backends behind one interface (:class:`.base.Backend`).

``head`` (:mod:`.head`): a frozen encoder's embeddings (cached by text) beside hashed
n-grams, and a logistic regression. ``finetune`` (:mod:`.finetune`):
``AutoModelForSequenceClassification`` fine-tuned, the k fold models and the full model
trained together (:mod:`.stacked`) on texts tokenised once (:mod:`.tokens`).
:func:`load_backend` loads the tokenizer and the pretrained weights once; every fit then
starts from those same weights, so k-fold models never leak into each other.
"""

from __future__ import annotations

from typing import Callable

from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.embedding_cache import EmbeddingCache
from crowdloop.tasks.models.base import Backend, resolve_backend


def load_backend(model: ModelConfig, *, embedding_cache: EmbeddingCache | None = None,
                 progress: Callable[[str], None] | None = None) -> Backend:
    """The backend ``model.backend`` names (``auto`` resolved), its model and tokenizer loaded once.

    ``embedding_cache`` (head only) is read and filled as texts are encoded (None: one in memory).
    """
    from transformers.utils import logging as hf_logging

    # The "newly initialized weights" warning and the loading bar are expected noise here.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    say = progress or (lambda message: None)
    if resolve_backend(model.backend) == "finetune":
        from crowdloop.tasks.models.finetune import FinetuneBackend

        return FinetuneBackend(model, progress=say)
    from crowdloop.tasks.models.head import HeadBackend

    return HeadBackend(model, embedding_cache=embedding_cache, progress=say)
