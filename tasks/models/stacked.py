"""Several fine-tunes of one architecture trained together, as one stacked model.

Why: a 300-step fine-tune of a small encoder at batch 8 is bound by per-step overhead
(kernel launches, Python, host syncs), not by arithmetic; training the k fold models
and the full model one after another pays that overhead k+1 times. Here the M models'
parameters are stacked along a new first dimension, and one forward, ``torch.func.vmap``
of ``functional_call`` over that dimension, runs every model on its own batch: the
kernels of one model's step, each M times wider. One AdamW over the stacked tensors is
M independent AdamWs (it is elementwise); the gradient of the summed losses with respect
to model m's slice is model m's own gradient; gradient clipping is per model. So each
model trains as it would alone: only its own rows (the :class:`Schedule`), its own
seed's head and batch order, its own learning-rate schedule. Dropout masks alone are
drawn jointly (one draw of shape (M, ...) per call instead of M draws): which masks a
model gets changes, their distribution does not.

A model whose forward cannot be vmapped (data-dependent control flow) is run once per
model inside the same step instead: the same results, M times the kernel launches.

No step reads a value back from the device except the progress line, every
``steps // 5`` steps; bf16 autocast where the caller asks for it (CUDA with bf16).
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from crowdloop.tasks.config import FinetuneConfig
from crowdloop.tasks.progress import bar as progress_bar
from crowdloop.tasks.models.tokens import training_batches

log = logging.getLogger("crowdloop")


@dataclass(frozen=True)
class Schedule:
    """What every model trains on at every step.

    Attributes
    ----------
    rows : ndarray of shape (steps, M, B), int
        Row of each batch slot; a short batch fills its empty slots with its first row.
    weights : ndarray of shape (steps, M, B), float32
        Each slot's share of its model's loss: the row's sample weight over the mean
        weight of the model's training rows, divided by the rows in the batch; 0 for a filler.
    lengths : ndarray of shape (steps,), int
        The longest row of the step over all models: the step's padded length.
    """

    rows: np.ndarray
    weights: np.ndarray
    lengths: np.ndarray


def schedule(token_lengths: np.ndarray, subsets: Sequence[np.ndarray], *, steps: int, batch_size: int,
             seeds: Sequence[int], sample_weight: np.ndarray | None = None) -> Schedule:
    """The :class:`Schedule` of M models, model m trained on rows ``subsets[m]`` with ``seeds[m]``.

    Parameters
    ----------
    token_lengths : ndarray of shape (N,)
        Token count of every row.
    subsets : M index arrays into 0..N-1
        Model m's training rows: the only rows its batches ever hold.
    sample_weight : ndarray of shape (N,), optional
        Each row's weight (None: equal weights).
    """
    token_lengths = np.asarray(token_lengths)
    weight = np.ones(len(token_lengths)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    rows = np.empty((steps, len(subsets), batch_size), dtype=np.int64)
    weights = np.zeros((steps, len(subsets), batch_size), dtype=np.float32)
    for m, (subset, seed) in enumerate(zip(subsets, seeds)):
        subset = np.asarray(subset, dtype=np.int64)
        slots = training_batches(len(subset), steps=steps, batch_size=batch_size, seed=seed)
        used = slots >= 0
        own = weight[subset] / weight[subset].mean()
        weights[:, m] = np.where(used, own[np.maximum(slots, 0)], 0.0) / used.sum(axis=1, keepdims=True)
        rows[:, m] = subset[np.where(used, slots, slots[:, :1])]
    return Schedule(rows=rows, weights=weights, lengths=token_lengths[rows].max(axis=(1, 2)))


def train(module, init: dict, ids, lengths, targets, plan: Schedule, *, config: FinetuneConfig, bf16: bool,
          progress: Callable[[str], None], vmapped: bool | None = None) -> dict:
    """Train M models from stacked initial parameters; returns their stacked trained parameters.

    Parameters
    ----------
    module : transformers PreTrainedModel
        The architecture (its own weights are never used or changed); on the training device.
    init : dict of name -> Tensor of shape (M, ...)
        Every parameter of ``module``, one slice per model.
    ids : Tensor of shape (N, L), int64
        Right-padded token ids of every row; ``lengths`` (N,) their token counts; ``targets`` (N,) class indices.
    plan : Schedule
        Which rows each model sees at each step, and how much each counts.
    vmapped : bool, optional
        One vmapped forward for all models (True) or one forward per model (False);
        None: vmapped where the model's forward allows it.

    Returns
    -------
    dict of name -> Tensor of shape (M, ...), detached.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    device = ids.device
    steps, n_models = plan.rows.shape[:2]
    params = {name: tensor.detach().clone().requires_grad_(True) for name, tensor in init.items()}
    # Biases and norm scales (one vector per model once stacked) are not decayed, as in the HF Trainer.
    groups = [{"params": [p for p in params.values() if p.dim() > 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params.values() if p.dim() <= 2], "weight_decay": 0.0}]
    optimiser = torch.optim.AdamW(groups, lr=config.learning_rate, fused=device.type == "cuda")
    lr_schedule = get_linear_schedule_with_warmup(optimiser, math.ceil(config.warmup_ratio * steps), steps)
    rows = torch.as_tensor(plan.rows, device=device)
    weights = torch.as_tensor(plan.weights, device=device)
    positions = torch.arange(ids.shape[1], device=device)

    def batch(step: int):
        width = int(plan.lengths[step])  # read from the host plan: no device sync
        picked = rows[step]
        return ids[:, :width][picked], positions[:width] < lengths[picked].unsqueeze(-1), targets[picked]

    if vmapped is None:
        vmapped = _can_vmap(module, params, *batch(0)[:2])
    every, running, since = max(1, steps // 5), torch.zeros(n_models, device=device), 0
    stack = contextlib.ExitStack()
    module.train()
    try:
        bar = stack.enter_context(progress_bar(steps, f"fine-tune, {n_models} model{'s' * (n_models > 1)}",
                                               unit="step"))
        for step in range(steps):
            batch_ids, keep, batch_targets = batch(step)
            with precision(device.type, bf16):
                logits = _logits(module, params, batch_ids, keep, vmapped=vmapped)
            rows_loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch_targets.flatten(),
                                                          reduction="none").view_as(keep[..., 0])
            losses = (rows_loss * weights[step]).sum(dim=1)  # (M,): each model's weighted mean loss
            losses.sum().backward()
            if config.max_grad_norm is not None:
                _clip_per_model(list(params.values()), config.max_grad_norm)
            optimiser.step()
            lr_schedule.step()
            optimiser.zero_grad(set_to_none=True)
            running += losses.detach()
            since += 1
            if (step + 1) % every == 0 or step + 1 == steps:
                mean = (running / since).tolist()  # the only read-back: once per progress line
                losses_text = " ".join(f"{value:.3f}" for value in mean)
                progress(f"fine-tune step {step + 1}/{steps}, {n_models} model{'s' * (n_models > 1)}: "
                         f"loss {losses_text}")
                bar.note(f"loss {losses_text}")
                running.zero_()
                since = 0
            bar.update(1)
    finally:
        stack.close()
        module.eval()
    return {name: tensor.detach() for name, tensor in params.items()}


def _logits(module, params: dict, ids, keep, *, vmapped: bool):
    """Logits (M, B, K) of every model on its own batch: ``ids`` and ``keep`` (M, B, L)."""
    import torch
    from torch.func import functional_call, vmap

    def one(own, own_ids, mask):
        return functional_call(module, own, args=(), kwargs={"input_ids": own_ids, "attention_mask": mask}).logits

    if vmapped:
        # A prepared 4-D mask: the 2-D one makes transformers ask the device whether any
        # padding is present (a data-dependent branch vmap cannot batch, and a sync).
        return vmap(one, randomness="different")(params, ids, _attention_mask(module, keep))
    return torch.stack([one({name: p[m] for name, p in params.items()}, ids[m], keep[m].long())
                        for m in range(ids.shape[0])])


def _attention_mask(module, keep):
    """``keep`` (M, B, L) as the 4-D mask (M, B, 1, 1, L) the model's attention takes:
    boolean for SDPA, additive for the eager attention."""
    import torch

    mask = keep[:, :, None, None, :]
    if module.config._attn_implementation == "sdpa":
        return mask
    return torch.zeros(mask.shape, device=keep.device).masked_fill(~mask, torch.finfo(torch.float32).min)


def _can_vmap(module, params: dict, ids, keep) -> bool:
    """Whether a forward and backward of the first batch run vmapped (the module in eval mode, so
    no dropout draw); if not, say why: the per-model fallback is slower."""
    try:
        _logits(module, params, ids, keep, vmapped=True).float().sum().backward()
    except Exception as err:  # whatever stops vmap, the per-model forward still trains correctly
        log.warning("%s cannot run vmapped (%s: %s); training the models in one loop, one forward each",
                    type(module).__name__, type(err).__name__, str(err).splitlines()[0] if str(err) else "")
        return False
    finally:
        for p in params.values():
            p.grad = None
    return True


def _clip_per_model(params: list, max_norm: float) -> None:
    """Scale each model's gradient (slice m of every tensor) to L2 norm at most ``max_norm``."""
    import torch

    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.reshape(g.shape[0], -1).norm(dim=1) for g in grads]).norm(dim=0)  # (M,)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))


def precision(device_type: str, bf16: bool):
    """bf16 autocast on ``device_type`` when ``bf16``, else nothing (float32)."""
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
