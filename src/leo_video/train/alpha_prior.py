"""Training the start-code prior p(α₁) (LEO_METHOD.md, "Unconditional start code") on the shared loop.

**Which codes.** ``data.codes: first`` (default) trains on the first code of every training video:
the prior is sampled as the α₁ of a *new* video, and first frames are not distributed like arbitrary
frames (videos tend to begin in a rest or neutral pose; a mid-motion code as α₁ starts a video
mid-gesture). ``data.codes: all`` uses every stored code instead: many more samples (useful when there
are few videos), at the price of learning the marginal over all frames rather than the start
distribution; LIA's codes are absolute per frame, so any of them is a valid start.

**Normalisation.** μ, σ of exactly the training codes (population std, as
:func:`~leo_video.data.motion_codes.compute_code_stats`) are stored in the model before the first step.

``leo-video train alpha-prior --codes CODES --config synthetic64`` runs this
(``cli/train_alpha_prior.py``); the final (EMA) model is exported to ``RUN_DIR/export``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from .common import adamw_with_warmup, export_model, optimizer_step
from .lmdm import train_video_names
from .loop import TrainingTask

def start_codes(root: str | os.PathLike, which: str = "first", test_fraction: float = 0.1) -> torch.Tensor:
    """The training samples of α₁: the first code of every train-split video, or all their codes: (N, M)."""
    from ..data.motion_codes import MotionCodeStore

    names = train_video_names(root, "train", test_fraction)
    sequences = [codes for _, codes in MotionCodeStore(root).items(names)]  # each (T, M)
    return torch.stack([c[0] for c in sequences]) if which == "first" else torch.cat(sequences)


# --------------------------------------------------------------------------------------------------
# The task


class AlphaPriorTask(TrainingTask):
    """ε- (or v-) prediction training of :class:`~leo_video.diffusion.start_code.StartCodePrior` on single codes (B, M)."""

    def setup(self) -> None:
        from ..diffusion.start_code import StartCodePrior

        cfg = self.config
        self.codes = start_codes(cfg.data.root, cfg.data.codes, cfg.data.test_fraction)  # (N, M)
        model = StartCodePrior.from_preset(cfg.model.preset, motion_dim=self.codes.shape[1],
                                       num_train_timesteps=cfg.model.num_train_timesteps,
                                       beta_schedule=cfg.model.beta_schedule,
                                       prediction_type=cfg.model.prediction_type)  # fmt: skip
        codes64 = self.codes.double()
        model.set_normalization(codes64.mean(0), codes64.std(0, unbiased=False))
        optimizer, lr = adamw_with_warmup(model.parameters(), cfg.optim, self.optimizer_kernel)
        self.models["prior"], self.optimizers["prior"] = self.accelerator.prepare(model, optimizer)
        self.schedulers["prior"] = lr
        self.track_ema("prior")

    def dataset(self) -> Dataset:
        return TensorDataset(self.codes)  # items: (α₁ (M,),)

    def train_step(self, batch: list[torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        (alpha1,) = batch  # (B, M)
        loss = self.models["prior"](alpha1)
        optimizer_step(self, "prior", loss, self.config.optim.grad_clip)
        return {"mse": loss}

    def export(self, folder: str | os.PathLike) -> Path:
        """Write the trained prior (EMA weights when kept) to ``folder`` (config.json + safetensors)."""
        return export_model(self, "prior", folder)
