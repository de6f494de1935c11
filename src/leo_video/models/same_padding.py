"""TensorFlow's ``SAME`` padding for convolutions and max-pools, in 2-D or 3-D (Sonnet / TF1 networks).

TF pads ``total = max((ceil(n / s) - 1) * s + k - n, 0)`` cells along each dim of size ``n`` (kernel
``k``, stride ``s``): the smaller half before, the larger after, zeros for convolutions and ignored cells
(``-inf``) for max-pools. PyTorch's own ``padding=`` is symmetric, so the odd cases pad explicitly.
Used by the Kinetics-400 I3D (:mod:`leo_video.metrics.i3d_k400`) and its 2-D reduction
(:mod:`leo_video.models.i3d_frame`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["conv_same", "max_pool_same", "same_pads"]


def same_pads(sizes: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """TF ``SAME`` padding of the last ``len(sizes)`` dims, in ``F.pad`` order (last dim first, before/after)."""
    pads: list[int] = []
    for n, k, s in reversed(list(zip(sizes, kernel, stride))):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


def conv_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
              stride: tuple[int, ...]) -> torch.Tensor:  # fmt: skip
    """TF ``conv(padding='SAME')`` of ``x (B, C, *S)`` with ``weight (C', C, *K)``; 2-D or 3-D by ``weight``."""
    conv = F.conv3d if weight.dim() == 5 else F.conv2d
    pads = same_pads(tuple(x.shape[2:]), tuple(weight.shape[2:]), stride)
    if pads[0::2] == pads[1::2]:
        return conv(x, weight, bias, stride, tuple(reversed(pads[0::2])))
    return conv(F.pad(x, pads), weight, bias, stride)  # e.g. a 7x7 stride-2 stem: the extra row/column after


def max_pool_same(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    """TF ``max_pool(padding='SAME')`` of ``x (B, C, *S)``, 2-D or 3-D by ``len(kernel)``: padded cells never win."""
    pool = F.max_pool3d if len(kernel) == 3 else F.max_pool2d
    pads = same_pads(tuple(x.shape[2:]), kernel, stride)
    if pads[0::2] == pads[1::2]:  # symmetric: the pool's own implicit -inf padding
        return pool(x, kernel, stride, padding=tuple(reversed(pads[0::2])))
    return pool(F.pad(x, pads, value=float("-inf")), kernel, stride)
