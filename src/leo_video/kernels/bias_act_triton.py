"""Triton kernels of the biased leaky ReLU (:func:`leo_video.kernels.bias_act.bias_act`), forward and backward.

This module imports triton: :mod:`leo_video.kernels.bias_act` imports it on the first fused call (CUDA tensors
only), and the interpreter tests in a child process started with ``TRITON_INTERPRET=1`` (``tests/bias_act_checks.py``).

Layout. A map x (B, C, *spatial), S = prod(spatial) pixels, is dense either as NCHW (contiguous) or as NHWC
(channels_last): within sample n, (pixel p, channel c) is element ``c * S + p`` or ``p * C + c``. Each program
takes a tile of BLOCK_S pixels x BLOCK_C channels of one sample, so the bias, the scale and the backward pass's
per-channel sums are vectors along the tile's channel axis in both layouts: no integer division per element.
Offsets inside a sample are int32 (the caller checks C * S < 2^31); the sample's start is int64.

Arithmetic, in float32 whatever the map's dtype (s = 1 without a scale, g = gain > 0, slope >= 0):
    forward   z = g * (x * s + b),  y = z if z > 0 else slope * z
    backward  dz = dy if z > 0 else slope * dy;  dx = g * s * dz;
              db[c] = g * sum_{n, p} dz;  ds[n, c] = g * sum_p dz * x
The sign of z is y's sign (slope >= 0), so the backward reads y, which the next layer keeps anyway; only when the
scale needs a gradient it reads x instead (ds needs x) and recomputes z. Each backward program sums ITERS tiles
of one sample's pixels and writes one row of partial sums per channel (float32); torch adds up those few rows
(``B * S / (ITERS * BLOCK_S)`` rows of C): deterministic, no atomics.

A backward under ``create_graph`` (the discriminator's R1 penalty differentiates D's input gradient) runs the
same formulas as differentiable torch ops, so autograd can take their gradient (leaky ReLU's second derivative
is 0 almost everywhere).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

TILE = 4096  # elements per program and tile: 16 per thread at 8 warps, large enough to hide memory latency
MAX_ITERS = 8  # tiles per backward program: fewer rows of partial sums, still >= 4 programs per SM at 256²


@triton.jit
def _sample_offsets(pixels, channels, S, C, CHANNELS_LAST: tl.constexpr):
    """(BLOCK_S, BLOCK_C) element offsets of (pixel, channel) within one sample."""
    if CHANNELS_LAST:
        offsets = pixels[:, None] * C + channels[None, :]
    else:
        offsets = pixels[:, None] + channels[None, :] * S
    return offsets


@triton.jit
def _bias_act_forward(x_ptr, bias_ptr, scale_ptr, y_ptr, S, C, slope, gain,
                    HAS_SCALE: tl.constexpr, CHANNELS_LAST: tl.constexpr,
                    BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr):
    n = tl.program_id(2)
    pixels = tl.program_id(0) * BLOCK_S + tl.arange(0, BLOCK_S)
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    in_c = channels < C
    mask = (pixels < S)[:, None] & in_c[None, :]
    start = n.to(tl.int64) * S * C
    offsets = _sample_offsets(pixels, channels, S, C, CHANNELS_LAST)
    x = tl.load(x_ptr + start + offsets, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(bias_ptr + channels, mask=in_c, other=0.0).to(tl.float32) * gain
    if HAS_SCALE:
        s = tl.load(scale_ptr + n * C + channels, mask=in_c, other=0.0).to(tl.float32) * gain
        z = x * s[None, :] + b[None, :]
    else:
        z = x * gain + b[None, :]
    y = tl.where(z > 0, z, z * slope)
    tl.store(y_ptr + start + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _bias_act_backward(dy_ptr, saved_ptr, bias_ptr, scale_ptr, dx_ptr, db_ptr, ds_ptr, S, C, slope, gain,
                     SAVED_X: tl.constexpr, HAS_SCALE: tl.constexpr, WANT_DX: tl.constexpr, WANT_DS: tl.constexpr,
                     CHANNELS_LAST: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr,
                     ITERS: tl.constexpr):
    n = tl.program_id(2)
    block = tl.program_id(0)
    channels = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    in_c = channels < C
    start = n.to(tl.int64) * S * C
    b = tl.load(bias_ptr + channels, mask=in_c, other=0.0).to(tl.float32) * gain
    if HAS_SCALE:
        s = tl.load(scale_ptr + n * C + channels, mask=in_c, other=0.0).to(tl.float32) * gain  # dx = s * dz
    else:
        s = tl.full((BLOCK_C,), 1.0, tl.float32) * gain
    sum_b = tl.zeros((BLOCK_C,), dtype=tl.float32)
    sum_s = tl.zeros((BLOCK_C,), dtype=tl.float32)
    for i in tl.static_range(ITERS):
        pixels = (block * ITERS + i) * BLOCK_S + tl.arange(0, BLOCK_S)
        mask = (pixels < S)[:, None] & in_c[None, :]
        offsets = start + _sample_offsets(pixels, channels, S, C, CHANNELS_LAST)
        dy = tl.load(dy_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        v = tl.load(saved_ptr + offsets, mask=mask, other=0.0).to(tl.float32)  # x or y
        if SAVED_X:
            positive = v * s[None, :] + b[None, :] > 0  # z, as the forward computed it
        else:
            positive = v > 0
        dz = tl.where(positive, dy, dy * slope)  # 0 where masked (dy = 0)
        if WANT_DX:
            tl.store(dx_ptr + offsets, (dz * s[None, :]).to(dx_ptr.dtype.element_ty), mask=mask)
        sum_b += tl.sum(dz, axis=0)
        if WANT_DS:
            sum_s += tl.sum(dz * v, axis=0)
    row = (n * tl.num_programs(0) + block) * C  # partial sums (B, programs along the pixels, C)
    tl.store(db_ptr + row + channels, sum_b * gain, mask=in_c)
    if WANT_DS:
        tl.store(ds_ptr + row + channels, sum_s * gain, mask=in_c)


# --------------------------------------------------------------------------------------------- #
# Launches
# --------------------------------------------------------------------------------------------- #


def _dense(t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``t`` (a copy if its memory is neither NCHW- nor NHWC-dense) and whether it is indexed as NHWC."""
    if t.is_contiguous():
        return t, False
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t, True
    return t.contiguous(), False


def _same_layout(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``t`` dense in the layout the saved map has (gradients may arrive in another one, or expanded)."""
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t.contiguous()


def _blocks(S: int, C: int, channels_last: bool) -> tuple[int, int]:
    """(BLOCK_S, BLOCK_C): powers of two, TILE elements at most, the contiguous axis first."""
    if channels_last:
        block_c = min(triton.next_power_of_2(C), 128)
        return min(triton.next_power_of_2(S), TILE // block_c), block_c
    block_s = min(triton.next_power_of_2(S), 1024)
    return block_s, min(triton.next_power_of_2(C), TILE // block_s)


def backward_tiles(S: int, C: int, channels_last: bool) -> tuple[int, int, int, int]:
    """(BLOCK_S, BLOCK_C, ITERS, programs along the pixels) of the backward pass."""
    block_s, block_c = _blocks(S, C, channels_last)
    iters = min(MAX_ITERS, triton.next_power_of_2(triton.cdiv(S, block_s)))
    return block_s, block_c, iters, triton.cdiv(S, block_s * iters)


def _device(t: torch.Tensor):
    """Launch on ``t``'s GPU (Triton launches on the current device); nothing to do when it is the current one,
    or for the interpreter's CPU tensors."""
    if t.is_cuda and t.device.index != torch.cuda.current_device():
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def _warps(block_s: int, block_c: int) -> int:
    return 8 if block_s * block_c >= TILE else 4


def forward(x: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor | None, slope: float,
            gain: float) -> torch.Tensor:
    """y (x's shape, dtype and layout); x dense as :func:`_dense` leaves it, bias (C,), scale (B, C) or None."""
    B, C = x.shape[:2]
    S = x[0, 0].numel()
    channels_last = _dense(x)[1]
    block_s, block_c = _blocks(S, C, channels_last)
    y = torch.empty_like(x)
    grid = (triton.cdiv(S, block_s), triton.cdiv(C, block_c), B)
    with _device(x):
        _bias_act_forward[grid](x, bias, scale if scale is not None else bias, y, S, C, slope, gain,
                                HAS_SCALE=scale is not None, CHANNELS_LAST=channels_last,
                                BLOCK_S=block_s, BLOCK_C=block_c, num_warps=_warps(block_s, block_c))
    return y


def backward(dy: torch.Tensor, saved: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor | None, slope: float,
             gain: float, saved_x: bool, want_dx: bool, want_ds: bool):
    """(dx or None, db (C,) float32, ds (B, C) float32 or None) for the map ``saved`` (x if ``saved_x``, else y)."""
    B, C = saved.shape[:2]
    S = saved[0, 0].numel()
    channels_last = _dense(saved)[1]
    dy = _same_layout(dy, channels_last)
    block_s, block_c, iters, programs = backward_tiles(S, C, channels_last)
    dx = torch.empty_like(saved) if want_dx else None
    db = torch.empty(B, programs, C, device=saved.device, dtype=torch.float32)
    ds = torch.empty_like(db) if want_ds else None
    grid = (programs, triton.cdiv(C, block_c), B)
    with _device(saved):
        _bias_act_backward[grid](dy, saved, bias, scale if scale is not None else bias,
                                 dx if want_dx else dy, db, ds if want_ds else db, S, C, slope, gain,
                                 SAVED_X=saved_x, HAS_SCALE=scale is not None, WANT_DX=want_dx, WANT_DS=want_ds,
                                 CHANNELS_LAST=channels_last, BLOCK_S=block_s, BLOCK_C=block_c, ITERS=iters,
                                 num_warps=_warps(block_s, block_c))
    return dx, db.sum((0, 1)), (ds.sum(1) if want_ds else None)


def backward_differentiable(dy: torch.Tensor, saved: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor | None,
                            slope: float, gain: float, saved_x: bool):
    """:func:`backward`'s values as torch ops (for ``create_graph``): (dx, db (C,), ds (B, C) or None)."""
    shape = (1, -1) + (1,) * (saved.dim() - 2)
    s = gain if scale is None else gain * scale.reshape(saved.shape[0], *shape[1:])
    z = saved * s + gain * bias.reshape(shape) if saved_x else saved
    dz = dy * torch.where(z > 0, 1.0, slope).to(dy.dtype)
    spatial = tuple(range(2, saved.dim()))  # () for an EqualLinear's (B, C): sum(()) would sum everything
    db = gain * dz.sum((0, *spatial), dtype=torch.float32)
    ds = None
    if saved_x:
        ds = gain * ((dz * saved).sum(spatial, dtype=torch.float32) if spatial else (dz * saved).float())
    return (dz * s).to(saved.dtype), db, ds


class BiasedLeakyReLU(torch.autograd.Function):
    """``leaky_relu(gain * (x * scale + bias), slope)`` with Triton kernels (module docstring).

    x (B, C, *spatial) fp16/bf16/fp32; bias C values; scale None or B * C values (B, C, 1, ...).
    """

    @staticmethod
    def forward(ctx, x, bias, scale, slope: float, gain: float):
        x = _dense(x)[0]
        flat_bias = bias.reshape(-1).contiguous()
        flat_scale = None if scale is None else scale.reshape(x.shape[:2]).contiguous()
        y = forward(x, flat_bias, flat_scale, slope, gain)
        ctx.saved_x = scale is not None and ctx.needs_input_grad[2]  # ds needs x; otherwise y (kept anyway)
        ctx.save_for_backward(x if ctx.saved_x else y, bias, scale)
        ctx.slope, ctx.gain = slope, gain
        return y

    @staticmethod
    def backward(ctx, dy):
        saved, bias, scale = ctx.saved_tensors
        flat_bias = bias.reshape(-1).contiguous()
        flat_scale = None if scale is None else scale.reshape(saved.shape[:2]).contiguous()
        want_dx, want_db, want_ds = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():  # create_graph: a backward that autograd can differentiate
            dx, db, ds = backward_differentiable(dy, saved, flat_bias, flat_scale, ctx.slope, ctx.gain, ctx.saved_x)
        else:
            dx, db, ds = backward(dy, saved, flat_bias, flat_scale, ctx.slope, ctx.gain, ctx.saved_x, want_dx,
                                  want_ds and ctx.saved_x)
        db = db.reshape(bias.shape).to(bias.dtype) if want_db else None
        ds = ds.reshape(scale.shape).to(scale.dtype) if want_ds else None
        return (dx if want_dx else None), db, ds, None, None


def biased_leaky_relu(x: torch.Tensor, bias: torch.Tensor, slope: float, gain: float,
                      scale: torch.Tensor | None = None) -> torch.Tensor:
    """The fused op (callers check :func:`leo_video.kernels.bias_act.fusable` first): x's shape, dtype, layout."""
    return BiasedLeakyReLU.apply(x, bias, scale, slope, gain)
