"""The fine-tune backend: ``AutoModelForSequenceClassification`` trained from the same
pretrained weights for every fit (so k-fold models never leak into each other)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.models.base import (check_class_indices, check_texts, check_weights, floor_probs,
                                         resolve_model_name)


class FinetuneBackend:
    """AutoModelForSequenceClassification fine-tuned from the same pretrained weights for every fit."""

    name = "finetune"

    def __init__(self, model: ModelConfig, *, progress: Callable[[str], None]):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.config = model
        self.model_name = resolve_model_name(model.name)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_name, trust_remote_code=False)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.progress = progress
        self._auto = AutoModelForSequenceClassification
        base, info = AutoModelForSequenceClassification.from_pretrained(
            self.model_name, output_loading_info=True, use_safetensors=True, trust_remote_code=False)
        # Keep only the weights the checkpoint holds (CPU copy, never trained); the
        # classification head is built anew, for the fit's class count, in every fit.
        fresh = set(info["missing_keys"])
        self.base_state = {k: v.detach().cpu().clone() for k, v in base.state_dict().items()
                           if k not in fresh}
        self.base_config = base.config
        del base

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The texts themselves, as an object array of shape (N,)."""
        check_texts(texts)
        out = np.empty(len(texts), dtype=object)
        out[:] = list(texts)
        return out

    def new_model(self, n_classes: int, *, seed: int):
        """The pretrained encoder with a freshly initialised ``n_classes``-way head, in train mode."""
        import copy

        import torch

        config = copy.deepcopy(self.base_config)
        config.num_labels = n_classes
        # transformers initialises new weights from torch's global RNG and takes no
        # generator, so seeding it here is the only way to make the head reproducible.
        torch.manual_seed(seed)
        model = self._auto.from_config(config)
        target = model.state_dict()
        state = {k: v for k, v in self.base_state.items() if k in target and target[k].shape == v.shape}
        model.load_state_dict(state, strict=False)
        return model.to(self.device).train()

    def fit(self, X: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int,
            sample_weight: np.ndarray | None = None):
        """``steps`` AdamW steps on texts X (N,) and class indices y (N,); returns the model in eval mode.

        ``sample_weight`` (N,): each row's cross-entropy counts w / mean(w), so the
        loss stays on the unweighted scale and the learning rate keeps its meaning.
        """
        import torch
        from transformers import get_linear_schedule_with_warmup

        y = check_class_indices(y, n_classes=n_classes, n_rows=len(X))
        weights = check_weights(sample_weight, n_rows=len(X))
        weights = torch.ones(len(X)) if weights is None else torch.as_tensor(weights / weights.mean(),
                                                                             dtype=torch.float32)
        cfg = self.config.finetune
        model = self.new_model(n_classes, seed=seed)
        optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        schedule = get_linear_schedule_with_warmup(optimiser, int(cfg.warmup_ratio * cfg.steps), cfg.steps)
        generator = torch.Generator().manual_seed(seed)
        targets = torch.as_tensor(y, dtype=torch.long)
        order, position = torch.randperm(len(X), generator=generator), 0
        every, running = max(1, cfg.steps // 5), []
        for step in range(1, cfg.steps + 1):
            if position >= len(order):  # next epoch: a new shuffle from the same generator
                order, position = torch.randperm(len(X), generator=generator), 0
            idx = order[position:position + self.config.minibatch_size]
            position += len(idx)
            batch = self._tokens([X[i] for i in idx.tolist()])
            logits = model(**batch).logits.float()
            rows = torch.nn.functional.cross_entropy(logits, targets[idx].to(self.device), reduction="none")
            loss = (rows * weights[idx].to(self.device)).mean()
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad(set_to_none=True)
            running.append(loss.item())
            if step % every == 0 or step == cfg.steps:
                self.progress(f"fine-tune step {step}/{cfg.steps}, loss {np.mean(running):.3f}")
                running = []
        return model.eval()

    def predict_proba(self, fitted, X: np.ndarray) -> np.ndarray:
        """Softmax probabilities of shape (N, n_classes) for texts X (N,)."""
        import torch

        out = [np.zeros((0, fitted.config.num_labels))]
        with torch.inference_mode():
            for start in range(0, len(X), self.config.minibatch_size):
                logits = fitted(**self._tokens(list(X[start:start + self.config.minibatch_size]))).logits
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return floor_probs(np.concatenate(out))

    def embed(self, fitted, X: np.ndarray) -> np.ndarray:
        """Mean-pooled, L2-normalised last hidden states (N, D) of ``fitted`` (None: the pretrained encoder)."""
        import torch

        model = fitted if fitted is not None else self.new_model(2, seed=0).eval()
        out = [np.zeros((0, model.config.hidden_size), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(X), self.config.minibatch_size):
                batch = self._tokens(list(X[start:start + self.config.minibatch_size]))
                hidden = model.base_model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled.float(), dim=1).cpu().numpy())
        return np.concatenate(out)

    def mc_dropout_proba(self, fitted, X: np.ndarray, *, passes: int, seed: int) -> np.ndarray:
        """``passes`` stochastic forward passes with dropout on: probabilities (passes, N, K)."""
        import torch

        torch.manual_seed(seed)  # dropout masks come from torch's global RNG
        fitted.train()
        try:
            return np.stack([self.predict_proba(fitted, X) for _ in range(passes)])
        finally:
            fitted.eval()

    def save(self, fitted, directory: Path) -> None:
        """save_pretrained of the model and the tokenizer: loadable with the Auto classes."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fitted.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def _tokens(self, texts: list[str]) -> dict:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length,
                               return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}
