"""StyleGAN2 residual discriminator used to train the LIA animator (LEO_METHOD.md, "Training").

Built from the shared blocks in :mod:`leo_video.models.stylegan2` (the same ``ConvLayer`` and
``ResDownBlock`` as the animator's appearance encoder). Layout: a 1x1 ``ConvLayer`` from RGB, residual
down blocks from S x S to 4 x 4, minibatch standard deviation (one extra feature map), a 3x3
``ConvLayer``, then two equalized linear layers to one logit. The parameter names follow LIA's
training checkpoints' ``dis`` entry (``convs.N``, ``final_conv``, ``final_linear``).
"""

from __future__ import annotations

import math

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from einops import rearrange
from torch import nn

from .lia import lia_channels
from .stylegan2 import ConvLayer, EqualLinear, ResDownBlock


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_features: int = 1) -> torch.Tensor:
    """Append the per-group standard deviation over the batch as extra channel(s).

    x: (B, C, H, W) -> (B, C + num_features, H, W). Samples are split into groups of
    ``min(group_size, B)`` (B must be divisible by it, as in StyleGAN2); the std over each group is
    averaged over channels (in ``num_features`` chunks) and pixels and broadcast back.
    """
    B, C, H, W = x.shape
    group = min(group_size, B)
    if B % group:
        group = 1 if B < group_size else math.gcd(B, group)
    y = rearrange(x, "(g n) (f c) h w -> g n f c h w", g=group, f=num_features)
    y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8)  # (n, f, c, h, w)
    y = y.mean(dim=(2, 3, 4))  # (n, f)
    y = y.repeat(group, 1)[:, :, None, None].expand(B, num_features, H, W)  # (B, f, H, W)
    return torch.cat([x, y.to(x.dtype)], dim=1)


class Discriminator(ModelMixin, ConfigMixin):
    """Residual StyleGAN2 discriminator. ``forward(images (B, 3, S, S)) -> logits (B, 1)``.

    ``channel_max`` caps the channel table (512 is StyleGAN2/LIA's; smaller values make the tiny
    demo and test models).
    """

    @register_to_config
    def __init__(self, size: int = 256, channel_multiplier: int = 1, channel_max: int = 512,
                 stddev_group: int = 4):
        super().__init__()
        ch = {r: min(lia_channels(r, channel_multiplier), channel_max) for r in _resolutions(size)}
        blocks: list[nn.Module] = [ConvLayer(3, ch[size], 1)]
        r = size
        while r > 4:
            blocks.append(ResDownBlock(ch[r], ch[r // 2]))
            r //= 2
        self.convs = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(ch[4] + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activate=True),
            EqualLinear(ch[4], 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = self.convs(images)  # (B, C4, 4, 4)
        h = minibatch_stddev(h, self.config.stddev_group)  # (B, C4 + 1, 4, 4)
        h = self.final_conv(h)  # (B, C4, 4, 4)
        return self.final_linear(h.flatten(1))  # (B, 1)


def _resolutions(size: int) -> list[int]:
    if size < 8 or size & (size - 1):
        raise ValueError(f"discriminator size must be a power of two >= 8, got {size}")
    return [2**k for k in range(2, int(math.log2(size)) + 1)]
