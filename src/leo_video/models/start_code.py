"""The start-code prior's denoiser: an MLP over single motion codes α₁ (LEO_METHOD.md, "Unconditional start code").

A small diffusion model learns p(α₁) so that fully unconditional generation can draw the first code
itself; this module is only its network, ``forward(sample (B, M), timestep) -> ε (B, M)``. The diffusion
wrapper (:class:`leo_video.diffusion.start_code.StartCodePrior`) owns the schedule, normalisation and sampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from ..errors import ConfigError
from .unet1d import expand_timestep

# One-line sizes; keys are keyword arguments of StartCodeMLP.
START_CODE_PRESETS: dict[str, dict] = {
    "tiny": dict(hidden_dim=64, num_blocks=2, time_embed_dim=32),
    "demo": dict(hidden_dim=128, num_blocks=3, time_embed_dim=64),
    "small": dict(hidden_dim=256, num_blocks=3, time_embed_dim=128),
    "base": dict(hidden_dim=512, num_blocks=4, time_embed_dim=128),
}


class ResidualMLPBlock(nn.Module):
    """LayerNorm → SiLU → Linear, + timestep embedding, → SiLU → Linear, with a residual connection."""

    def __init__(self, dim: int, temb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.time_proj = nn.Linear(temb_dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """x: (B, D), temb: (B, D_t) -> (B, D)."""
        h = self.fc1(F.silu(self.norm(x))) + self.time_proj(F.silu(temb))  # (B, D)
        return x + self.fc2(self.dropout(F.silu(h)))


class StartCodeMLP(ModelMixin, ConfigMixin):
    """ε-predictor over single codes: ``forward(sample (B, M), timestep (B,) or scalar) -> (B, M)``.

    Args:
        motion_dim: M.
        hidden_dim: width of the residual MLP.
        num_blocks: residual blocks.
        time_embed_dim: channels of the sinusoidal timestep embedding (diffusers ``Timesteps``).
        dropout: dropout inside blocks.
    """

    @register_to_config
    def __init__(
        self,
        motion_dim: int = 20,
        hidden_dim: int = 256,
        num_blocks: int = 3,
        time_embed_dim: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        if num_blocks < 1 or hidden_dim < 1 or time_embed_dim % 2:
            raise ConfigError(
                f"alpha prior: need num_blocks >= 1, hidden_dim >= 1, even time_embed_dim "
                f"(got {num_blocks}, {hidden_dim}, {time_embed_dim})"
            )
        self.time_proj = Timesteps(time_embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(time_embed_dim, hidden_dim)
        self.proj_in = nn.Linear(motion_dim, hidden_dim)
        self.blocks = nn.ModuleList([ResidualMLPBlock(hidden_dim, hidden_dim, dropout) for _ in range(num_blocks)])
        self.norm_out = nn.LayerNorm(hidden_dim)
        self.proj_out = nn.Linear(hidden_dim, motion_dim)
        nn.init.zeros_(self.proj_out.weight)  # a fresh model predicts ε = 0
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int) -> torch.Tensor:
        """Predict ε. sample: (B, M); timestep: (B,) or scalar -> (B, M)."""
        B = sample.shape[0]
        t = expand_timestep(timestep, B, sample.device)  # (B,)
        temb = self.time_embedding(self.time_proj(t).to(sample.dtype))  # (B, D)
        h = self.proj_in(sample)  # (B, D)
        for block in self.blocks:
            h = block(h, temb)  # (B, D)
        return self.proj_out(F.silu(self.norm_out(h)))  # (B, M)
