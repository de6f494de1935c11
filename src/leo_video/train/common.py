"""Pieces shared by the stages on the loop (cDDPM, cLMDM, alpha prior; LIA's LR decay): the AdamW + warm-up
optimizer section, the cosine LR decay, one optimizer step of a single-model task, the EMA export and the CLI's
fit-then-export ending.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from ..configs import AdamWConfig
from .loop import Trainer, TrainingTask


def warmup_lr(step: int, warmup_steps: int) -> float:
    """LR multiplier: linear warm-up over ``warmup_steps`` optimizer steps, then 1."""
    return 1.0 if warmup_steps == 0 else min(1.0, (step + 1) / warmup_steps)


def cosine_decay_lr(step: int, decay_steps: int, final: float, start: int = 0) -> float:
    """LR multiplier: 1 until optimizer step ``start``, then a half cosine down to ``final`` at ``decay_steps``,
    then ``final``; 1 throughout when ``decay_steps`` is 0 (a constant rate, then a decay at the end: what a
    run that has reached its plateau needs, docs/TRAINING.md)."""
    if decay_steps == 0 or step <= start:
        return 1.0
    progress = min(step - start, decay_steps - start) / max(decay_steps - start, 1)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def adamw_with_warmup(
    params: Any, o: AdamWConfig, kernel: dict[str, bool]
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer and LR schedule of an :class:`AdamWConfig` section; ``kernel``: the ``fused`` /
    ``foreach`` flags of ``accelerator.optimizer_kernel`` (``train.optimizer_impl``)."""
    optimizer = torch.optim.AdamW(params, lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay, **kernel)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_lr(s, o.warmup_steps))


def optimizer_step(task: TrainingTask, name: str, loss: torch.Tensor, grad_clip: float) -> None:
    """Backward ``loss`` into ``task.models[name]``, clip, step its optimizer, and its LR schedule once
    per real optimizer step (not per accumulated micro-batch; see the loop's contract)."""
    acc, optimizer = task.accelerator, task.optimizers[name]
    acc.backward(loss)
    if grad_clip > 0 and acc.sync_gradients:
        acc.clip_grad_norm_(task.models[name].parameters(), grad_clip)
    optimizer.step()
    if acc.sync_gradients and name in task.schedulers:
        task.schedulers[name].step()
    optimizer.zero_grad()


def export_model(task: TrainingTask, name: str, folder: str | os.PathLike) -> Path:
    """Write ``task.models[name]`` (EMA weights when kept) to ``folder`` (config.json + safetensors), atomically."""
    from ..utils.atomic import save_pretrained_atomic

    with task.ema_weights(name) as model:
        return save_pretrained_atomic(model, folder, overwrite=True)


def fit_and_export(task: TrainingTask, config: Any, export_dir: str | os.PathLike, what: str) -> int:
    """The end of every ``leo-video train <stage>``: train (resuming), then ``task.export(export_dir)``
    on the main process. Prints one line; returns the exit code (0)."""
    trainer = Trainer(task, config)
    result = trainer.fit()
    if result.interrupted:
        print(f"stopped at step {result.step}; checkpoint {result.checkpoint}; rerun the same command to resume")
        return 0
    if trainer.accelerator.is_main_process:
        folder = task.export(Path(export_dir))
        print(f"trained {result.step} steps; {what} exported to {folder}")
    return 0
