"""StyleGAN2's biased leaky ReLU ``leaky_relu(gain * x * scale + gain * bias, slope)``: one public function,
a Triton kernel on CUDA (``bias_act_triton``) and the plain-PyTorch reference everywhere else.

The fused kernel reads x once and writes y once in the forward pass, and reads dy and y (x when the scale needs
a gradient) and writes dx once in the backward pass, with the bias (and scale) gradient summed in the same
pass; the reference costs a multiply-add and the activation forward, and the activation's gradient, the
multiply's gradient and a reduction per parameter backward, each a pass over the map. The kernel computes in
float32 and rounds once to x's dtype; the reference rounds after each op in x's dtype (in bf16: the scaled bias
and scale, the sum), so both agree with float64 to the rounding of x's dtype, the kernel the more closely.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from . import fused_enabled

FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)  # float64 is the parity tests' dtype: reference
MAX_GRID_Z = 65535  # CUDA's limit on a grid's third axis, which counts samples


def bias_act(x: torch.Tensor, bias: torch.Tensor, slope: float, gain: float, scale: torch.Tensor | None = None,
             impl: Literal["auto", "triton", "reference"] = "auto") -> torch.Tensor:
    """``leaky_relu(gain * x * scale + gain * bias, slope)``, (B, C, ...) -> (B, C, ...) in x's dtype and layout.

    x: (B, C, ...); bias: C values ((C,) or (1, C, 1, 1)); scale: None or (B, C, 1, ...) per-(sample, channel)
    factors (a modulated convolution's demodulation). ``impl``: ``auto`` runs the Triton kernel when
    :func:`fused_applies`, else the reference; ``triton`` / ``reference`` force one (tests, benchmarks).
    """
    if impl == "auto":
        impl = "triton" if fused_applies(x, bias, slope, gain, scale) else "reference"
    if impl == "triton":
        from . import bias_act_triton  # imports triton: only on this path

        return bias_act_triton.biased_leaky_relu(x, bias, slope, gain, scale)
    return bias_act_reference(x, bias, slope, gain, scale)


# Below this many elements the kernel loses to the reference on an H100 (benchmarks/bias_act.py, 2026-12-06: a
# bf16 fwd+bwd costs the kernel ~0.25 ms whatever the size — launches and the bias-gradient rows — so maps of
# 16.7M elements (32 x 512 x 32 x 32) ran 0.77x, of 33.5M (32 x 256 x 64 x 64) 1.43x, and larger ones 2.4-3.3x).
FUSED_MIN_ELEMENTS = 1 << 25


def fused_applies(x: torch.Tensor, bias: torch.Tensor, slope: float, gain: float,
                  scale: torch.Tensor | None = None) -> bool:
    """Whether ``auto`` takes the kernel: a CUDA map, fused kernels on (:func:`leo_video.kernels.fused_enabled`),
    not inside ``torch.compile`` (Inductor fuses the reference's ops into its own kernels), at least
    ``FUSED_MIN_ELEMENTS`` elements and :func:`fusable`."""
    return (not torch.compiler.is_compiling() and x.is_cuda and x.numel() >= FUSED_MIN_ELEMENTS
            and fused_enabled() and fusable(x, bias, slope, gain, scale))  # fmt: skip


def fusable(x: torch.Tensor, bias: torch.Tensor, slope: float, gain: float, scale: torch.Tensor | None = None) -> bool:
    """Whether the kernel computes this call: fp16/bf16/fp32 x (B, C, ...) with B < 65536 and C * pixels < 2^31,
    C bias values, a (B, C, 1, ...) scale or none, gain > 0 and slope >= 0 (the backward reads z's sign from y)."""
    if x.dtype not in FUSED_DTYPES or x.dim() < 2 or x.numel() == 0:
        return False
    B, C = x.shape[:2]
    shapes_fit = bias.numel() == C and (scale is None or (scale.shape[:2] == (B, C) and scale.numel() == B * C))
    return shapes_fit and B <= MAX_GRID_Z and x.numel() // B < 2**31 and gain > 0 and slope >= 0


def bias_act_reference(x: torch.Tensor, bias: torch.Tensor, slope: float, gain: float,
                       scale: torch.Tensor | None = None) -> torch.Tensor:
    """The plain-PyTorch op: ``leaky_relu(gain * x * scale + gain * bias)`` (gain > 0 commutes with the leaky ReLU).

    One multiply-add over x and one activation instead of four passes; without autograd the activation runs in
    place on the fresh sum (the same values).
    """
    # In x's dtype: a float32 bias would promote a bf16 map (autocast) to float32, doubling this pass's
    # memory traffic and adding a cast before the next convolution.
    bias = bias.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2))) * gain
    out = torch.add(bias, x, alpha=gain) if scale is None else torch.addcmul(bias, x, (scale * gain).to(x.dtype))
    in_graph = torch.is_grad_enabled() and out.requires_grad
    return F.leaky_relu(out, slope) if in_graph else F.leaky_relu_(out, slope)
