"""StyleGAN2 building blocks shared by the LIA encoder, the LIA generator and the discriminator.

Everything is built from standard PyTorch ops, so it runs on CPU, CUDA and MPS, in any float dtype; on CUDA
the biased leaky ReLU runs a fused Triton kernel when triton is installed (:mod:`leo_video.kernels`). The
parameter / buffer names and shapes follow LIA's generator exactly (see ``lia_checkpoint_layout.md``), so
official checkpoints load with ``strict=True``.

Conventions (StyleGAN2, Karras et al. 2020):

* **Equalized learning rate**: weights are stored unscaled (init N(0, 1)) and multiplied at run time by
  ``1 / sqrt(fan_in)`` (:class:`EqualConv2d`, :class:`EqualLinear`).
* **Biased leaky ReLU** (the "fused" activation): ``leaky_relu(x + b, 0.2) * sqrt(2)``.
* **FIR filters**: the [1, 3, 3, 1] low-pass :class:`~leo_video.models.fir.Blur` and
  :class:`~leo_video.models.fir.Upsample` (:mod:`leo_video.models.fir`).
* **Modulated convolution**: a per-sample style scales the input channels of a shared weight,
  optionally followed by demodulation (unit output variance per sample). The layer modulates
  activations instead of weights (``conv(x * s, W) * d``), which is the same function without
  materialising B weight tensors (LIA's per-sample weights: the reference in ``tests/reference/``).
  :class:`StyledConv` folds the demodulation ``d`` into its activation (one ``addcmul``).

Building blocks for the discriminator: :class:`ConvLayer` (optionally blur + stride-2 downsampling,
optional biased leaky ReLU), :class:`ResDownBlock` (two ConvLayers + blurred 1x1 skip, scaled by
1/sqrt 2) and :class:`EqualLinear` (with optional activation and learning-rate multiplier).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..kernels.bias_act import bias_act
from .fir import FIR_TAPS, Blur, Upsample, is_channels_last

LEAKY_SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2.0)
DEMOD_EPS = 1e-8


# --------------------------------------------------------------------------------------------- #
# Functional ops
# --------------------------------------------------------------------------------------------- #


def biased_leaky_relu(
    x: torch.Tensor, bias: torch.Tensor, slope: float = LEAKY_SLOPE, gain: float = LEAKY_GAIN,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN2's fused activation ``leaky_relu(x * scale + bias, slope) * gain``.

    x: (B, C, ...) ; bias: C values of any shape ((C,) or (1, C, 1, 1)), broadcast along dim 1;
    scale: None or per-(sample, channel) factors (B, C, 1, ...) — the demodulation of a modulated conv,
    folded in here so that it costs no pass of its own. Returns x's shape, dtype and memory layout.
    Evaluated as ``leaky_relu(gain * x * scale + gain * bias)`` (gain > 0 commutes with the leaky ReLU) by
    :func:`leo_video.kernels.bias_act.bias_act`: one Triton kernel per pass on CUDA (forward; backward with the
    bias and scale gradients), a multiply-add and an activation elsewhere.
    """
    return bias_act(x, bias, slope, gain, scale)


def _needs_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd records ops on these tensors (in-place shortcuts are only safe when not)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


# --------------------------------------------------------------------------------------------- #
# Equalized layers
# --------------------------------------------------------------------------------------------- #


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate: ``conv(x, weight / sqrt(in * k * k), bias)``.

    Parameters: ``weight`` (out, in, k, k) ~ N(0, 1); ``bias`` (out,) if ``bias``.
    x: (B, in, H, W) -> (B, out, (H + 2 padding - k) // stride + 1, ...).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, k={k}, stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate and a learning-rate multiplier.

    y = x (weight * lr_mul / sqrt(in))^T + bias * lr_mul, then (if ``activate``) the biased leaky
    ReLU with that bias instead. Parameters: ``weight`` (out, in) ~ N(0, 1) / lr_mul, ``bias`` (out,)
    filled with ``bias_init / lr_mul``. x: (B, in) -> (B, out).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul, self.activate = lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activate:
            out = F.linear(x, self.weight * self.scale)
            return out if bias is None else biased_leaky_relu(out, bias)
        return F.linear(x, self.weight * self.scale, bias)


class FusedLeakyReLU(nn.Module):
    """Biased leaky ReLU with a learned per-channel ``bias`` of shape (1, C, 1, 1) (LIA's layout).

    ``scale`` (B, C, 1, 1), optional: multiplies x first (a modulated conv's demodulation).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        return biased_leaky_relu(x, self.bias, scale=scale)


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU], as an ``nn.Sequential`` (keys ``0.``, ``1.``, ``2.``).

    * ``downsample``: blur with ``K`` (pads chosen so the stride-2 conv halves H exactly:
      (2, 2) for k = 3, (1, 1) for k = 1), then a stride-2 conv without padding.
    * otherwise a stride-1 conv with padding k // 2.
    * with ``activate`` the conv has no bias; the activation carries it. Without activation the conv
      has its own ``bias`` if asked.
    x: (B, in, H, W) -> (B, out, H, W), or (B, out, H/2, W/2) when downsampling.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(FIR_TAPS) - 2) + (kernel_size - 1)
            # p is even for odd kernel sizes: pads (p/2, p/2). A 1x1 stride-2 conv reads every other blurred
            # sample only: the blur keeps just those (down=2) and the conv runs at stride 1, the same sums.
            pointwise = kernel_size == 1
            layers.append(Blur(padding=p // 2, down=2 if pointwise else 1))
            stride, padding = (1 if pointwise else 2), 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride, padding,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels))
        super().__init__(*layers)


class ResDownBlock(nn.Module):
    """Residual downsampling block: ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``, (B, in, H, W) -> (B, out, H/2, W/2).

    conv1: 3x3 in -> in; conv2: blurred 3x3 stride 2 in -> out; skip: blurred 1x1 stride 2, no bias,
    no activation. Used by the LIA appearance encoder and the StyleGAN2 discriminator.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # scaled in place: the sum is fresh, and add's backward needs neither its inputs nor its output
        return torch.add(self.conv2(self.conv1(x)), self.skip(x)).mul_(1 / math.sqrt(2.0))


# --------------------------------------------------------------------------------------------- #
# Style-modulated layers (generator side)
# --------------------------------------------------------------------------------------------- #


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution (no bias), optionally demodulated and/or 2x upsampling.

    Parameters: ``weight`` (1, out, in, k, k); ``blur`` (``4 K``, pads (1, 1) for k = 3) when
    upsampling; ``modulation`` = EqualLinear(style_dim -> in, bias init 1).

    Per sample b with style s_b = modulation(latent_b) (in,):
    W_b = weight / sqrt(in k k) * s_b (along in); demodulated: W_b[o] /= sqrt(sum W_b[o]^2 + 1e-8).
    No upsampling: conv with W_b, padding k // 2. Upsampling: transposed conv with W_b, stride 2,
    padding 0 ((2H+1) for k = 3), then the blur -> 2H.

    Computed as modulated activations and scaled outputs, ``conv(x * s_b, W) * d_b``: one shared weight
    for the whole batch, the same function as LIA's B per-sample weights.
    x: (B, in, H, W), latent: (B, style_dim) -> (B, out, H, W) or (B, out, 2H, 2W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        if upsample:
            p = (len(FIR_TAPS) - 2) - (kernel_size - 1)
            self.blur = Blur(padding=(p + 1) // 2 + 1, gain=4.0)  # (1, 1) for k = 3
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate, self.upsample = demodulate, upsample

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        out, demod = self.modulated(x, latent)
        if demod is None:
            return out
        return out * demod if _needs_grad(out) else out.mul_(demod)

    def modulated(self, x: torch.Tensor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The layer with its demodulation left to the caller: ``(out, d)`` where the output is ``out * d``.

        d: (B, out, 1, 1), or None when ``out`` is the output already (no demodulation).
        :class:`StyledConv` folds d into its activation.
        Demodulation is a per-channel scale, so it commutes with the upsampling blur.
        """
        style = self.modulation(latent)  # (B, in)
        weight = self.weight[0] * self.scale  # (out, in, k, k)
        out = self._shared_weight(x, style, weight)
        if self.upsample:
            out = self.blur(out)
        return out, (self._demodulation(style, weight) if self.demodulate else None)

    def _shared_weight(self, x: torch.Tensor, style: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """conv(x * s_b, W): modulated, not demodulated; (B, out, 2H+1, 2W+1) before the blur when upsampling.
        weight: the scaled W (out, in, k, k)."""
        if weight.shape[-1] == 1 and not self.upsample:
            # 1x1: one batched matmul with per-sample (out, in) weights reads x once (no modulated copy of x)
            B, _, H, W = x.shape
            per_sample = weight[None, :, :, 0, 0] * style[:, None, :]  # (B, out, in)
            return torch.matmul(per_sample, x.flatten(2)).view(B, -1, H, W)  # (B, out, H, W)
        x = x * style[:, :, None, None]  # (B, in, H, W)
        if self.upsample:
            return F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # (B, out, 2H+1, 2W+1)
        return F.conv2d(x, weight, padding=weight.shape[-1] // 2)  # (B, out, H, W)

    @staticmethod
    def _demodulation(style: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """d_b[o] = 1 / sqrt(sum_{i,kh,kw} (W[o,i] s_b[i])^2 + eps), (B, out, 1, 1); weight the scaled W."""
        energy = style.square() @ weight.square().sum((2, 3)).t()  # sum_i s_i^2 |W[o,i]|^2: (B, out)
        return torch.rsqrt(energy + DEMOD_EPS)[:, :, None, None]


class NoiseInjection(nn.Module):
    """``x + weight * noise``; returns x unchanged when no noise is given (LIA never passes any).

    ``weight`` (1,) exists for checkpoint compatibility; LIA's forward never draws random numbers.
    """

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return x if noise is None else x + self.weight * noise


class StyledConv(nn.Module):
    """Demodulated modulated conv -> noise injection -> biased leaky ReLU (``activate.bias``).

    x: (B, in, H, W), latent: (B, style_dim) -> (B, out, H, W), or (B, out, 2H, 2W) with ``upsample``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x: torch.Tensor, latent: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is not None:
            return self.activate(self.noise(self.conv(x, latent), noise))
        out, demod = self.conv.modulated(x, latent)
        return self.activate(out, scale=demod)  # demodulation, bias and activation in one pass


class ToRGB(nn.Module):
    """LIA's un-modulated RGB head on a warped, masked feature map: ``biased_lrelu(conv1x1(warp(F) * mask)) + bias``
    (+ the upsampled previous RGB).

    Note the leaky ReLU *before* the output ``bias`` (LIA's layout: ``conv.0.weight``, ``conv.1.bias``,
    ``bias``, ``upsample.kernel``).
    """

    def __init__(self, in_channels: int, upsample: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample()
        self.conv = ConvLayer(in_channels, 3, 1)

    def forward(self, feature: torch.Tensor, grid: torch.Tensor, mask: torch.Tensor,
                skip: torch.Tensor | None = None) -> torch.Tensor:
        """The head on ``warp(feature, grid) * mask`` without warping C channels.

        The 1x1 conv (no bias) is linear per pixel and bilinear sampling is linear in the values, so
        conv(grid_sample(F)) = grid_sample(conv(F)), and conv(s * mask) = mask * conv(s): the conv runs
        once on the source's features (once per source for batch-broadcast features, see ``per_source``)
        and only 3 channels are warped. feature (B, C, H, W), grid (B, H, W, 2), mask (B, 1, H, W),
        skip (B, 3, H/2, W/2) -> (B, 3, H, W).
        """
        conv, activate = self.conv
        projected = per_source(conv, feature)  # (B, 3, H, W)
        out = activate(warp(projected, grid, projected) * mask) + self.bias
        return out if skip is None else out + self.upsample(skip)


def set_memory_format(module: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """Lay out ``module``'s 4-D parameters and buffers in ``memory_format`` (in place); returns the module.

    Unlike ``Module.to(memory_format=...)``: 5-D tensors (modulated weights) are left alone, and so are
    per-channel vectors stored as (1, C, 1, 1) (biases): channels_last would give them strides
    (C, 1, C, C) that describe the same memory, but their gradients arrive with (C, 1, 1, 1) and DDP warns
    that they do not match its bucket views (and copies them).
    """
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.dim() == 4 and not (tensor.shape[0] == 1 and tensor.shape[2:] == (1, 1)):
                tensor.data = tensor.data.contiguous(memory_format=memory_format)
    return module


_GRID_CACHE: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}


def identity_grid(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """LIA's base sampling grid, (1, size, size, 2) with grid[0, i, j] = (x_j, y_i), x, y = linspace(-1, 1).

    Built as LIA does (float64 linspace rounded to float32, even for float64 runs), then cast to
    ``dtype``; cached per (size, dtype, device). Treat the result as read-only.
    Under ``torch.compile`` it is built inside the graph (a constant to Inductor) instead: a cache lookup
    would guard on the dict, and the first call, which fills it, would fail that guard and recompile.
    """
    if torch.compiler.is_compiling():
        return _make_identity_grid(size, dtype, device)
    key = (size, dtype, torch.device(device))
    if key not in _GRID_CACHE:
        _GRID_CACHE[key] = _make_identity_grid(size, dtype, device)
    return _GRID_CACHE[key]


def _make_identity_grid(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    import numpy as np

    xs = torch.from_numpy(np.linspace(-1.0, 1.0, size)).float()  # (size,) float32, as LIA (torch.linspace differs)
    ys, xs = torch.meshgrid(xs, xs, indexing="ij")  # rows vary y, columns vary x
    return torch.stack((xs, ys), dim=-1)[None].to(device=device, dtype=dtype)  # (1, size, size, 2)


class ToFlow(nn.Module):
    """LIA's flow / occlusion head at one decoder resolution r (the warp and inpainting are the decoder's).

    o = modulated 1x1 conv (no demodulation) of x to 3 channels + ``bias`` (+ upsampled previous o);
    flow offsets tanh(o[:, :2]) are added to the identity grid; mask = sigmoid(o[:, 2]).
    """

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)

    def forward(self, x: torch.Tensor, latent: torch.Tensor,
                skip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, r, r), latent (B, style_dim), skip (B, 3, r/2, r/2) previous logits or None ->
        the sampling grid (B, r, r, 2) in float32 or wider, the mask (B, 1, r, r) and the logits (B, 3, r, r)."""
        logits = self.conv(x, latent) + self.bias  # (B, 3, r, r)
        if skip is not None:
            logits = logits + self.upsample(skip)
        H = logits.shape[2]
        offsets = torch.tanh(logits[:, :2]).permute(0, 2, 3, 1)  # (B, r, r, 2) = (dx, dy)
        # Sample in >= float32: bf16/fp16 coordinates would be off by up to ~r/256 pixels.
        work = torch.promote_types(x.dtype, torch.float32)
        grid = identity_grid(H, work, x.device) + offsets.to(work)  # (B, r, r, 2)
        return grid, torch.sigmoid(logits[:, 2:3]), logits


def warp(feature: torch.Tensor, grid: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """LIA's warp: bilinear ``grid_sample`` (zero padding, align_corners=False) at the grid's precision,
    returned in ``feature``'s dtype and ``like``'s memory layout. feature (B, C, H, W), grid (B, H, W, 2)."""
    sampled = F.grid_sample(shared_to(feature, grid.dtype), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (B, C, H, W)
    return same_layout(sampled, like, feature.dtype)


def per_source(fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for a per-sample op; a batch-broadcast view (``render``'s one source expanded over the
    frames, batch stride 0) is computed on one sample and expanded back, not B times."""
    if x.shape[0] > 1 and x.stride(0) == 0:
        one = fn(x[:1])
        return one.expand(x.shape[0], *one.shape[1:])
    return fn(x)


def shared_to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x.to(dtype)`` that keeps a batch-broadcast view (``Tensor.expand``, batch stride 0) a view.

    ``render`` expands one source's features over every frame; a plain ``.to`` would materialise B
    copies (for B = 64 at 256², about 2 GB per decoder pass). Same values either way.
    """
    return per_source(lambda sample: sample.to(dtype), x)


def same_layout(x: torch.Tensor, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x.to(dtype)`` in channels-last memory if ``like`` is: ops such as ``grid_sample`` return NCHW
    whatever their input, and one NCHW tensor in an NHWC network makes the next convolutions fall
    back to NCHW kernels. Layout and dtype change in one copy; values are those of ``x.to(dtype)``."""
    dtype = x.dtype if dtype is None else dtype
    if is_channels_last(like) and not is_channels_last(x):
        return torch.empty_like(x, dtype=dtype, memory_format=torch.channels_last).copy_(x)
    return x.to(dtype)
