"""The fine-tune backend: ``AutoModelForSequenceClassification`` fine-tuned from the same
pretrained weights for every model, so k-fold models never leak into each other.

A round tokenises its texts once (:mod:`.tokens`); :meth:`FinetuneBackend.fit_many`
trains the k fold models and the full model together as one stacked model
(:mod:`.stacked`); predictions run in large length-sorted batches. A fitted model is
a :class:`FineTuned`: its parameters, run on the backend's one module per class count.
On CUDA with bf16 the forward passes run under bf16 autocast; on a CPU in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from crowdloop.tasks.config import ModelConfig
from crowdloop.tasks.progress import bar as progress_bar
from crowdloop.tasks.models import stacked
from crowdloop.tasks.models.base import (check_class_indices, check_texts, check_tokenizer, check_weights,
                                         checked_model, floor_probs, loading)
from crowdloop.tasks.models.tokens import Tokens, inference_batches, tokenize


@dataclass(frozen=True)
class FineTuned:
    """A fine-tuned classifier: every parameter of the ``n_classes``-way model, by name."""

    params: dict[str, Any]  # name -> torch.Tensor, on the backend's device
    n_classes: int


@dataclass(frozen=True)
class _Module:
    """The architecture for one class count, with the pretrained weights (never trained itself);
    ``fresh``: the parameters the checkpoint does not hold (the classification head)."""

    module: Any
    fresh: frozenset[str]


class FinetuneBackend:
    """AutoModelForSequenceClassification fine-tuned from the same pretrained weights for every fit."""

    name = "finetune"

    def __init__(self, model: ModelConfig, *, progress: Callable[[str], None]):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.config = model
        self.model_name = checked_model(model)
        with loading(self.model_name):
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_name, trust_remote_code=False)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        # vmap needs the 4-D masks both attentions take; on a CPU the eager one runs batched,
        # while SDPA's CPU kernel would be called once per model.
        self.attention = None if self.device.type == "cuda" else "eager"
        self.progress = progress
        self._auto = AutoModelForSequenceClassification
        with loading(self.model_name):
            base, info = AutoModelForSequenceClassification.from_pretrained(
                self.model_name, output_loading_info=True, attn_implementation=self.attention,
                use_safetensors=True, trust_remote_code=False)
        check_tokenizer(self.tokenizer, vocab_size=base.config.vocab_size, name=self.model_name)
        # The weights the checkpoint holds (a CPU copy, never trained) start every model of any class count.
        fresh = frozenset(info["missing_keys"])
        self.base_state = {k: v.detach().cpu().clone() for k, v in base.state_dict().items() if k not in fresh}
        self.base_config = base.config
        # The loaded model serves its own class count (2 unless the checkpoint says otherwise).
        self._modules = {base.config.num_labels: _Module(base.to(self.device).eval(), fresh)}

    def features(self, texts: Sequence[str]) -> Tokens:
        """The texts tokenised once (N rows), truncated to ``model.max_length``."""
        check_texts(texts)
        return tokenize(self.tokenizer, texts, max_length=self.config.max_length)

    def fit(self, X: Tokens, y: np.ndarray, *, n_classes: int, seed: int,
            sample_weight: np.ndarray | None = None) -> FineTuned:
        """One model on all rows of X (N,) and class indices y (N,): :meth:`fit_many` with one subset."""
        return self.fit_many(X, y, [np.arange(len(X))], n_classes=n_classes, seeds=[seed],
                             sample_weight=sample_weight)[0]

    def fit_many(self, X: Tokens, y: np.ndarray, subsets: Sequence[np.ndarray], *, n_classes: int,
                 seeds: Sequence[int], sample_weight: np.ndarray | None = None) -> list[FineTuned]:
        """``model.finetune.steps`` AdamW steps for each of M models, trained together (:mod:`.stacked`).

        Parameters
        ----------
        X : Tokens of N rows
        y : ndarray of shape (N,)
            Class indices.
        subsets : M index arrays into 0..N-1
            Model m trains on rows ``subsets[m]`` only, with seed ``seeds[m]`` (its head's
            initialisation and its batch order).
        sample_weight : ndarray of shape (N,), optional
            Each row's cross-entropy counts w / mean(w) over the model's rows, so the loss
            stays on the unweighted scale and the learning rate keeps its meaning.

        Returns
        -------
        M fitted models, in the order of ``subsets``.
        """
        import torch

        y = check_class_indices(y, n_classes=n_classes, n_rows=len(X))
        weights = check_weights(sample_weight, n_rows=len(X))
        if len(subsets) != len(seeds):
            raise ValueError(f"fit_many got {len(subsets)} row subsets and {len(seeds)} seeds; pass one seed each.")
        built = self._module(n_classes)
        plan = stacked.schedule(X.lengths, subsets, steps=self.config.finetune.steps,
                                batch_size=self.config.minibatch_size, seeds=seeds, sample_weight=weights)
        # Dropout draws from torch's global RNG (transformers' modules take no generator).
        torch.manual_seed(int(np.random.SeedSequence(list(seeds)).generate_state(1)[0]))
        trained = stacked.train(built.module, self._initial_params(built, seeds),
                                torch.as_tensor(X.ids, device=self.device),
                                torch.as_tensor(X.lengths, device=self.device),
                                torch.as_tensor(y, device=self.device), plan,
                                config=self.config.finetune, bf16=self.bf16, progress=self.progress)
        return [FineTuned({name: p[m] for name, p in trained.items()}, n_classes) for m in range(len(subsets))]

    def predict_proba(self, fitted: FineTuned, X: Tokens) -> np.ndarray:
        """Softmax probabilities of shape (N, n_classes) for X (N rows)."""
        import torch

        probs = self._forward(fitted, X, width=fitted.n_classes,
                              head=lambda out, keep: torch.softmax(out.logits.float(), dim=1))
        return floor_probs(probs)

    def embed(self, fitted: FineTuned | None, X: Tokens) -> np.ndarray:
        """Mean-pooled, L2-normalised last hidden states (N, D) of ``fitted`` (None: the pretrained encoder)."""
        import torch

        def pool(out, keep):
            hidden = out.hidden_states[-1].float()
            mask = keep.unsqueeze(-1).to(hidden.dtype)
            return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)

        return self._forward(fitted, X, width=self.base_config.hidden_size, head=pool, hidden=True).astype(np.float32)

    def mc_dropout_proba(self, fitted: FineTuned, X: Tokens, *, passes: int, seed: int) -> np.ndarray:
        """``passes`` stochastic forward passes with dropout on: probabilities (passes, N, K)."""
        import torch

        torch.manual_seed(seed)  # dropout masks come from torch's global RNG
        module = self._module(fitted.n_classes).module
        module.train()
        try:
            return np.stack([self.predict_proba(fitted, X) for _ in range(passes)])
        finally:
            module.eval()

    def save(self, fitted: FineTuned, directory: Path) -> None:
        """save_pretrained of the model and the tokenizer: loadable with the Auto classes."""
        import copy

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(self.base_config)
        config.num_labels = fitted.n_classes
        model = self._auto.from_config(config)
        missing, unexpected = model.load_state_dict({k: v.cpu() for k, v in fitted.params.items()}, strict=False)
        if unexpected or set(missing) & {name for name, _ in model.named_parameters()}:
            raise RuntimeError(f"fitted parameters do not match the model: missing {missing}, unexpected {unexpected}")
        model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)

    def _module(self, n_classes: int) -> _Module:
        """The ``n_classes``-way architecture with the pretrained weights on the device, built once."""
        if n_classes not in self._modules:
            import copy

            config = copy.deepcopy(self.base_config)
            config.num_labels = n_classes
            module = self._auto.from_config(config, attn_implementation=self.attention)
            target = module.state_dict()
            state = {k: v for k, v in self.base_state.items() if k in target and target[k].shape == v.shape}
            module.load_state_dict(state, strict=False)
            fresh = frozenset(name for name, _ in module.named_parameters() if name not in state)
            self._modules[n_classes] = _Module(module.to(self.device).eval(), fresh)
        return self._modules[n_classes]

    def _initial_params(self, built: _Module, seeds: Sequence[int]) -> dict:
        """Every parameter stacked for M models (M, ...): the pretrained weights, and for each
        model a head whose weight matrices are drawn from N(0, initializer_range) with its own
        seed (transformers' initialisation of a new linear layer; its biases start at 0)."""
        import torch

        std = getattr(built.module.config, "initializer_range", 0.02)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        out = {}
        for name, p in built.module.named_parameters():
            p = p.detach()
            if name in built.fresh and p.dim() >= 2:
                draws = [torch.empty(p.shape).normal_(0.0, std, generator=g) for g in generators]
                out[name] = torch.stack(draws).to(self.device, p.dtype)
            else:
                out[name] = p.unsqueeze(0).expand(len(seeds), *p.shape).clone()
        return out

    def _forward(self, fitted: FineTuned | None, X: Tokens, *, width: int, head: Callable,
                 hidden: bool = False) -> np.ndarray:
        """``head(outputs, keep)`` (B, width) for every row of X, in length-sorted batches of
        ``model.finetune.inference_batch_size``; one read-back at the end. Shape (N, width)."""
        import torch
        from torch.func import functional_call

        built = self._module(fitted.n_classes if fitted is not None else self.base_config.num_labels)
        size = self.config.finetune.inference_batch_size
        batches = inference_batches(X.lengths, batch_size=size)
        ids = torch.as_tensor(X.ids, device=self.device)
        lengths = torch.as_tensor(X.lengths, device=self.device)
        out = torch.zeros((len(X), width), device=self.device)
        # Lines every 30 s at most (not per batch: a pool predicted in chunks by k models said
        # "predicted 300/300 texts" for every chunk and model, counting the chunk, not the pool).
        with (torch.inference_mode(), stacked.precision(self.device.type, self.bf16),
              progress_bar(len(X) if len(batches) > 1 else 0, "predicting", unit="text", say=self.progress) as bar):
            for rows in batches:
                picked = torch.as_tensor(rows, device=self.device)
                batch_ids = ids[picked, :int(X.lengths[rows].max())]
                keep = torch.arange(batch_ids.shape[1], device=self.device) < lengths[picked].unsqueeze(-1)
                kwargs = {"input_ids": batch_ids, "attention_mask": keep.long(), "output_hidden_states": hidden}
                outputs = (built.module(**kwargs) if fitted is None
                           else functional_call(built.module, fitted.params, args=(), kwargs=kwargs))
                out[picked] = head(outputs, keep).float()
                bar.update(len(rows))
        return out.cpu().numpy()
