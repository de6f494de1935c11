"""The 1D temporal U-Net: LEO's ε-predictor over motion-code sequences (LEO_METHOD.md, "Stage 2").

Channels are motion dimensions M and the length axis is time: a sequence of L codes is a tensor
``(B, M, L)``. The network is a plain DDPM-style U-Net in one dimension:

* residual Conv1d blocks (GroupNorm → SiLU → Conv1d, the timestep embedding added after the first
  convolution of every block),
* ``len(block_channels)`` resolution levels, halving the length between levels with a strided conv and
  doubling it back with nearest upsampling + conv, with one skip connection per level,
* optional temporal self-attention (diffusers' :class:`~diffusers.models.attention_processor.Attention`)
  at the levels flagged in ``attention_levels`` and in the middle block,
* a zero-initialised output convolution, so a fresh model predicts ε = 0.

**Any length.** The input is padded at the end (replicating the last code) to a multiple of
``2 ** (len(block_channels) - 1)`` and the output cropped back, so any L ≥ 1 works, odd ones included.

The network knows nothing about noise schedules or the LMC construction (``diffusion/motion.py``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from ..errors import ConfigError

# One-line model sizes (DiT-style presets); keys are the keyword arguments of TemporalUNet1D.
UNET1D_PRESETS: dict[str, dict] = {
    "tiny": dict(block_channels=(32, 64), layers_per_block=1, attention_levels=(False, True), norm_groups=8),
    "demo": dict(block_channels=(32, 64, 128), layers_per_block=2, attention_levels=(False, False, True)),
    "small": dict(block_channels=(64, 128, 256), layers_per_block=2, attention_levels=(False, False, True)),
    "base": dict(block_channels=(128, 256, 512), layers_per_block=2, attention_levels=(False, True, True)),
}


class ResBlock1D(nn.Module):
    """Residual block over time: two GroupNorm-SiLU-Conv1d layers, timestep embedding added between."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size=3, padding=1)
        self.shortcut = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, L), temb: (B, D) already SiLU-activated (once per forward) -> (B, C_out, L)."""
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, L)
        h = h + self.time_proj(temb)[:, :, None]  # timestep added per block
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))  # (B, C_out, L)
        return h + self.shortcut(x)


class TemporalAttention(nn.Module):
    """Self-attention over the time axis (pre-GroupNorm, residual), on diffusers' Attention."""

    def __init__(self, channels: int, head_dim: int, groups: int):
        super().__init__()
        heads = max(1, channels // head_dim)
        self.attn = Attention(
            channels, heads=heads, dim_head=channels // heads, norm_num_groups=groups, bias=True,
            residual_connection=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, L) -> (B, C, L)."""
        return self.attn(x.transpose(1, 2)).transpose(1, 2)  # Attention works on (B, L, C)


class Level(nn.Module):
    """One resolution level: ``layers`` residual blocks, each optionally followed by attention."""

    def __init__(self, in_ch: int, out_ch: int, layers: int, temb: int, groups: int, attention: bool,
                 head_dim: int, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            [ResBlock1D(in_ch if i == 0 else out_ch, out_ch, temb, groups, dropout) for i in range(layers)]
        )
        self.attns = nn.ModuleList(
            [TemporalAttention(out_ch, head_dim, groups) if attention else nn.Identity() for _ in range(layers)]
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for block, attn in zip(self.blocks, self.attns):
            x = attn(block(x, temb))
        return x


class TemporalUNet1D(ModelMixin, ConfigMixin):
    """ε-predictor over code sequences: ``forward(sample (B, C_in, L), timestep) -> (B, C_out, L)``.

    Args:
        in_channels / out_channels: motion dimensions M of the input and output sequence.
        block_channels: width of each resolution level, coarsest last; its length is the depth.
        layers_per_block: residual blocks per level (down and up path each).
        attention_levels: one flag per level: temporal self-attention after that level's blocks.
            The middle block has attention when the coarsest level has.
        attention_head_dim: channels per attention head.
        norm_groups: GroupNorm groups; must divide every entry of ``block_channels``.
        dropout: dropout inside residual blocks.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 20,
        out_channels: int = 20,
        block_channels: Sequence[int] = (64, 128, 256),
        layers_per_block: int = 2,
        attention_levels: Sequence[bool] = (False, False, True),
        attention_head_dim: int = 32,
        norm_groups: int = 32,
        dropout: float = 0.0,
    ):
        super().__init__()
        _check_unet_config(block_channels, attention_levels, norm_groups, layers_per_block)
        chans = list(block_channels)
        base, temb = chans[0], 4 * chans[0]
        self.time_proj = Timesteps(base, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(base, temb)
        self.conv_in = nn.Conv1d(in_channels, base, kernel_size=3, padding=1)

        level = dict(layers=layers_per_block, temb=temb, groups=norm_groups, head_dim=attention_head_dim,
                     dropout=dropout)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i, ch in enumerate(chans):
            self.down.append(Level(chans[max(i - 1, 0)], ch, attention=attention_levels[i], **level))
            if i < len(chans) - 1:
                self.downsample.append(nn.Conv1d(ch, ch, kernel_size=3, stride=2, padding=1))

        deep = chans[-1]
        self.mid = Level(deep, deep, attention=attention_levels[-1], **{**level, "layers": 2})

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(chans))):
            below = deep if i == len(chans) - 1 else chans[i]  # channels arriving from the coarser level
            self.up.append(Level(below + chans[i], chans[i], attention=attention_levels[i], **level))
            if i > 0:
                self.upsample.append(nn.Conv1d(chans[i], chans[i - 1], kernel_size=3, padding=1))

        self.norm_out = nn.GroupNorm(norm_groups, base)
        self.conv_out = nn.Conv1d(base, out_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # a fresh model predicts ε = 0
        nn.init.zeros_(self.conv_out.bias)

    @property
    def length_multiple(self) -> int:
        """Internal lengths are padded to a multiple of this (2 ** number of downsamplings)."""
        return 2 ** (len(self.config.block_channels) - 1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int) -> torch.Tensor:
        """Predict ε. sample: (B, C_in, L); timestep: (B,) or scalar -> (B, C_out, L)."""
        B, _, L = sample.shape
        temb = self.time_embedding(self.time_proj(expand_timestep(timestep, B, sample.device)).to(sample.dtype))
        temb = F.silu(temb)  # shared by every block's projection

        pad = (-L) % self.length_multiple
        x = F.pad(sample, (0, pad), mode="replicate") if pad else sample  # (B, C_in, L')
        h = self.conv_in(x)  # (B, C0, L')
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, temb)  # (B, C_i, L' / 2^i)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # (B, C_i, L' / 2^(i+1))
        h = self.mid(h, temb)  # (B, C_deep, L' / 2^(D-1))
        for j, level in enumerate(self.up):
            h = level(torch.cat([h, skips.pop()], dim=1), temb)  # (B, C_i, L' / 2^i)
            if j < len(self.upsample):
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, C_{i-1}, 2x)
        out = self.conv_out(F.silu(self.norm_out(h)))  # (B, C_out, L')
        return out[:, :, :L]


def expand_timestep(timestep: torch.Tensor | float | int, batch: int, device: torch.device) -> torch.Tensor:
    """Scalar or (B,) diffusion timestep -> float tensor (B,) on ``device`` (shared by the denoisers)."""
    t = torch.as_tensor(timestep, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t.reshape(batch).float()


def _check_unet_config(block_channels, attention_levels, norm_groups: int, layers_per_block: int) -> None:
    if len(block_channels) == 0:
        raise ConfigError("block_channels: needs at least one level")
    if len(attention_levels) != len(block_channels):
        raise ConfigError(
            f"attention_levels: {len(attention_levels)} flags for {len(block_channels)} levels of block_channels"
        )
    if layers_per_block < 1:
        raise ConfigError(f"layers_per_block: must be >= 1, got {layers_per_block}")
    bad = [c for c in block_channels if c % norm_groups]
    if bad:
        raise ConfigError(f"block_channels: {bad} not divisible by norm_groups={norm_groups}")
