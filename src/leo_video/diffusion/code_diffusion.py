"""What the three diffusion models of LEO share: a DDPM training schedule from their stored config, the
training-noise draw, a sampler by name, and per-dimension code statistics kept as buffers.

:class:`~leo_video.diffusion.motion.MotionDiffusion` (cLMDM), :class:`~leo_video.diffusion.start_code.StartCodePrior`
and :class:`~leo_video.diffusion.start_frame.StartFrameDiffusion` (cDDPM) subclass :class:`CodeDiffusion`.
"""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, DDPMScheduler, ModelMixin
from diffusers.utils.torch_utils import randn_tensor

from ..errors import InputError
from .schedulers import make_scheduler



class CodeDiffusion(ModelMixin, ConfigMixin):
    """Schedule, code-statistics buffers and the training-noise draw of LEO's diffusion models (a base class)."""

    def _init_stats(self, motion_dim: int, residual: bool) -> None:
        self.register_buffer("code_mean", torch.zeros(motion_dim))  # μ (M,)
        self.register_buffer("code_std", torch.ones(motion_dim))  # σ (M,)
        if residual:
            self.register_buffer("residual_std", torch.ones(motion_dim))  # σ_m (M,)

    @torch.no_grad()
    def set_normalization(
        self, code_mean: torch.Tensor, code_std: torch.Tensor, residual_std: torch.Tensor | None = None
    ) -> None:
        """Store per-dimension statistics, each (M,); stds are floored at 1e-6 (constant dimensions)."""
        M = self.code_mean.shape[0]
        for name, value in (("code_mean", code_mean), ("code_std", code_std), ("residual_std", residual_std)):
            if value is None or not hasattr(self, name):
                continue
            value = torch.as_tensor(value, dtype=torch.float32).flatten()
            if value.shape[0] != M or not torch.isfinite(value).all():
                raise InputError(f"{name}: expected {M} finite values, got shape {tuple(value.shape)}")
            getattr(self, name).copy_(value.clamp_min(1e-6) if name.endswith("std") else value)

    def _normalize(self, alpha: torch.Tensor) -> torch.Tensor:
        """(..., M) codes -> standardised codes."""
        return (alpha - self.code_mean) / self.code_std

    def _denormalize(self, alpha_hat: torch.Tensor) -> torch.Tensor:
        return alpha_hat * self.code_std + self.code_mean

    @property
    def train_scheduler(self) -> DDPMScheduler:
        """The DDPM training schedule (``add_noise``), built from the stored config."""
        if getattr(self, "_train_scheduler", None) is None:
            self._train_scheduler = make_scheduler("ddpm", config=self.config.scheduler_config)
        return self._train_scheduler

    def _noised(
        self, x0: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward process at uniform timesteps: x0 (B, ...) -> (x_t, t (B,), regression target)."""
        sched = self.train_scheduler
        B = x0.shape[0]
        gen_device = generator.device if generator is not None else x0.device
        t = torch.randint(0, sched.config.num_train_timesteps, (B,), generator=generator, device=gen_device)
        t = t.to(x0.device)
        noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = sched.add_noise(x0, noise, t)
        kind = sched.config.prediction_type
        target = {"epsilon": noise, "sample": x0}.get(kind)
        if target is None:  # v_prediction
            target = sched.get_velocity(x0, noise, t)
        return x_t, t, target

    def _sampler(self, sampler: str):
        return make_scheduler(sampler, config=self.config.scheduler_config)


