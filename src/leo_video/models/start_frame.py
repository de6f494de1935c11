"""The start-frame denoiser (cDDPM): an image U-Net that predicts ε for a noisy start frame x₁ given its motion code α₁
(LEO_METHOD.md, "The start frame", option 2).

The network is diffusers' :class:`~diffusers.UNet2DModel` (ResNet blocks, self-attention at the levels
flagged in ``attention_levels``). The motion code conditions it through the **timestep embedding**:

    emb = TimestepEmbedding(t) + MotionEmbedding(α̂₁)        (B, D),  D = 4 · block_out_channels[0]

where ``MotionEmbedding`` is an MLP ``M → D → D`` owned by this wrapper. We build the U-Net with
``class_embed_type="identity"`` and pass the projected code as ``class_labels``: diffusers then adds it
to the timestep embedding unchanged (its ``nn.Identity`` class embedding), and every ResNet block
receives it through its scale/shift of the embedding. (``num_class_embeds`` would make a lookup table
for discrete labels, and ``class_embed_type="timestep"`` a sinusoidal embedding of a scalar; neither
fits a continuous M-dimensional code.)

Why the embedding and not cross-attention (``UNet2DConditionModel``): α₁ is one global vector of
M ≈ 20 numbers, not a token sequence. Adding it to the timestep embedding is how ADM/DiT inject a class
label, costs nothing, and reaches every block at every resolution; cross-attention over a single
token would degenerate to a learned per-layer bias through softmax over one key, at the price of
attention layers at every level.

**Classifier-free guidance** (Ho & Salimans 2022). In training the condition is dropped with
probability ``cond_dropout`` (the diffusion wrapper draws the mask): dropped rows use a learned null
embedding instead of the projected code. At sampling,
``ε̃ = ε_∅ + s · (ε_α − ε_∅)`` (:meth:`StartFrameUNet.guided_eps`); ``s = 1`` is the plain conditional
model. The network knows nothing of noise schedules or code statistics (``diffusion/start_frame.py``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from diffusers import ConfigMixin, ModelMixin, UNet2DModel
from diffusers.configuration_utils import register_to_config
from torch import nn

from ..errors import ConfigError, InputError

# One-line model sizes (DiT-style presets); keys are keyword arguments of StartFrameUNet.
START_FRAME_PRESETS: dict[str, dict] = {
    # tests: 16²-64², a few hundred thousand parameters
    "tiny": dict(block_out_channels=(16, 32), layers_per_block=1, attention_levels=(False, True),
                 attention_head_dim=8, norm_num_groups=8),
    # the shipped demo model at 64² (leo_video/assets/demo_pipeline): 2.8M parameters, attention at 32², 16²
    "demo": dict(block_out_channels=(32, 64, 128), layers_per_block=1, attention_levels=(False, True, True),
                 attention_head_dim=32, norm_num_groups=16),
    # 64²: attention at 32² and 16²
    "small": dict(block_out_channels=(64, 128, 256), layers_per_block=2, attention_levels=(False, True, True),
                  attention_head_dim=32, norm_num_groups=32),
    # 256² (the DDPM/ADM layout of diffusers' 256² models): attention at 16² and 8²
    "base": dict(block_out_channels=(128, 128, 256, 256, 512, 512), layers_per_block=2,
                 attention_levels=(False, False, False, False, True, True),
                 attention_head_dim=64, norm_num_groups=32),
}


def block_types(attention_levels: Sequence[bool]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """diffusers block names for per-level attention flags: (down types, up types), up = mirrored."""
    down = tuple("AttnDownBlock2D" if attn else "DownBlock2D" for attn in attention_levels)
    up = tuple("AttnUpBlock2D" if attn else "UpBlock2D" for attn in reversed(attention_levels))
    return down, up


class MotionEmbedding(nn.Module):
    """α̂₁ (B, M) -> (B, D): Linear → SiLU → Linear, added to the timestep embedding by the U-Net."""

    def __init__(self, motion_dim: int, embed_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(motion_dim, embed_dim)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """code: (B, M) -> (B, D)."""
        return self.fc2(self.act(self.fc1(code)))


class StartFrameUNet(ModelMixin, ConfigMixin):
    """ε-predictor for start frames: ``forward(sample (B, 3, H, W), timestep, motion_code (B, M)) -> (B, 3, H, W)``.

    Args:
        sample_size: image side H = W (a multiple of ``2 ** (levels - 1)``).
        motion_dim: M, the length of a motion code.
        block_out_channels: channels per resolution level.
        layers_per_block: ResNet layers per level.
        attention_levels: one flag per level: self-attention at that level or not.
        attention_head_dim: channels per attention head.
        norm_num_groups: GroupNorm groups (must divide every channel count).
        dropout: dropout inside ResNet blocks.
        cond_dropout: probability of replacing the code by the null embedding in training (classifier-free
            guidance); 0 turns guidance off (then ``guidance_scale`` must be 1).
        in_channels: image channels (3).

    ``motion_code`` is the *normalised* code α̂₁ (the diffusion wrapper standardises it).
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int = 64,
        motion_dim: int = 20,
        block_out_channels: Sequence[int] = (64, 128, 256),
        layers_per_block: int = 2,
        attention_levels: Sequence[bool] = (False, True, True),
        attention_head_dim: int = 32,
        norm_num_groups: int = 32,
        dropout: float = 0.0,
        cond_dropout: float = 0.1,
        in_channels: int = 3,
    ):
        super().__init__()
        self._check(sample_size, block_out_channels, attention_levels, norm_num_groups, cond_dropout)
        down, up = block_types(attention_levels)
        embed_dim = 4 * block_out_channels[0]  # UNet2DModel's default time_embed_dim
        self.unet = UNet2DModel(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=in_channels,
            down_block_types=down,
            up_block_types=up,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            attention_head_dim=attention_head_dim,
            norm_num_groups=norm_num_groups,
            dropout=dropout,
            time_embedding_dim=embed_dim,
            class_embed_type="identity",  # class_labels = our projected code, added to the timestep embedding
        )
        self.motion_embedding = MotionEmbedding(motion_dim, embed_dim)
        # The "absent code" of classifier-free guidance lives in embedding space: a learned (D,) vector
        # that dropped rows use instead of MotionEmbedding(α̂₁). Zero at init = "no condition added".
        self.null_embedding = nn.Parameter(torch.zeros(embed_dim))

    @staticmethod
    def _check(size: int, channels: Sequence[int], attention: Sequence[bool], groups: int, p: float) -> None:
        if len(channels) < 1 or len(attention) != len(channels):
            raise ConfigError(f"attention_levels: need one flag per level ({len(channels)}), got {len(attention)}")
        if any(c % groups for c in channels):
            raise ConfigError(f"norm_num_groups: {groups} must divide every block_out_channels {tuple(channels)}")
        if size < 1 or size % 2 ** (len(channels) - 1):
            raise ConfigError(f"sample_size: {size} must be a multiple of {2 ** (len(channels) - 1)}")
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"cond_dropout: must be in [0, 1), got {p}")

    def condition(self, motion_code: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """The code's embedding, (B, M) -> (B, D); rows where ``drop`` (B,) is True get the null embedding."""
        emb = self.motion_embedding(motion_code.to(self.dtype))  # (B, D)
        if drop is not None:
            emb = torch.where(drop[:, None].to(emb.device), self.null_embedding.to(emb.dtype), emb)  # (B, D)
        return emb

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        motion_code: torch.Tensor,
        drop_condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict ε. sample (B, 3, H, W), timestep (B,) or scalar, motion_code (B, M), drop_condition
        (B,) bool or None -> ε (B, 3, H, W)."""
        B, _, H, W = sample.shape
        if motion_code.shape != (B, self.config.motion_dim):
            raise InputError(f"motion_code: expected ({B}, {self.config.motion_dim}), got {tuple(motion_code.shape)}")
        emb = self.condition(motion_code, drop_condition)  # (B, D)
        return self.unet(sample, timestep, class_labels=emb).sample  # (B, 3, H, W)

    def guided_eps(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        motion_code: torch.Tensor,
        guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        """Classifier-free guided ε̃ = ε_∅ + s (ε_α − ε_∅): (B, 3, H, W), (B, M) -> (B, 3, H, W).

        ``s = 1`` is exactly the conditional prediction (one forward pass); otherwise the conditional and
        unconditional halves run as one batch of 2B.
        """
        if guidance_scale == 1.0:
            return self(sample, timestep, motion_code)
        B = sample.shape[0]
        drop = torch.arange(2 * B, device=sample.device) >= B  # first half conditional, second half null
        t = timestep.repeat(2) if torch.is_tensor(timestep) and timestep.ndim == 1 else timestep
        eps = self(torch.cat([sample, sample]), t, torch.cat([motion_code, motion_code]), drop)  # (2B, 3, H, W)
        eps_cond, eps_null = eps.chunk(2)  # (B, 3, H, W) each
        return eps_null + guidance_scale * (eps_cond - eps_null)
