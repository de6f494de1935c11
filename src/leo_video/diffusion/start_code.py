"""The start-code prior p(α₁): a diffusion model over single motion codes (B, M) that, with the cDDPM,
makes LEO fully unconditional (LEO_METHOD.md, "The start frame", option 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config

from ..errors import ConfigError, InputError
from ..models.start_code import START_CODE_PRESETS, StartCodeMLP
from . import schedulers
from .code_diffusion import CodeDiffusion
from .schedulers import denoise


class StartCodePrior(CodeDiffusion):
    """A diffusion model over single codes α₁ (B, M) with a :class:`StartCodeMLP` denoiser.

    Args:
        motion_dim: M.
        mlp_config: keyword arguments of :class:`StartCodeMLP` (``motion_dim`` is set here).
        scheduler_config: the noise schedule (:func:`~leo_video.diffusion.schedulers.scheduler_config`).
    """

    @register_to_config
    def __init__(self, motion_dim: int = 20, mlp_config: dict | None = None, scheduler_config: dict | None = None):
        super().__init__()
        if mlp_config is None:
            self.register_to_config(mlp_config=dict(START_CODE_PRESETS["small"]))
        if scheduler_config is None:
            self.register_to_config(scheduler_config=schedulers.scheduler_config())
        self.mlp = StartCodeMLP(**{**self.config.mlp_config, "motion_dim": motion_dim})
        self._init_stats(motion_dim, residual=False)

    @classmethod
    def from_preset(cls, preset: str, motion_dim: int = 20, **schedule) -> "StartCodePrior":
        """A fresh prior with the MLP preset ``tiny``/``small``/``base``."""
        if preset not in START_CODE_PRESETS:
            raise ConfigError(f"alpha prior preset {preset!r}: choose one of {', '.join(START_CODE_PRESETS)}")
        return cls(motion_dim=motion_dim, mlp_config=dict(START_CODE_PRESETS[preset]),
                   scheduler_config=schedulers.scheduler_config(**schedule))

    def training_loss(self, alpha1: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The MSE to the schedule's target (ε, or v) over start codes ``alpha1 (B, M)``."""
        if alpha1.ndim != 2 or alpha1.shape[-1] != self.config.motion_dim:
            raise InputError(f"alpha1: expected (B, {self.config.motion_dim}), got {tuple(alpha1.shape)}")
        x0 = self._normalize(alpha1.to(device=self.device, dtype=self.dtype))  # (B, M)
        x_t, t, target = self._noised(x0, generator)
        return F.mse_loss(self.mlp(x_t, t).float(), target.float())

    def forward(self, alpha1: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.training_loss(alpha1, generator)

    @torch.no_grad()
    def sample(
        self, n: int, sampler: str = "ddim", steps: int = 50, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``n`` start codes: (n, M)."""
        if n < 1:
            raise InputError(f"n: must be >= 1, got {n}")
        x = denoise(self.mlp, (n, self.config.motion_dim), self._sampler(sampler), steps, generator,
                    device=self.device, dtype=self.dtype)
        return self._denormalize(x)  # (n, M)

