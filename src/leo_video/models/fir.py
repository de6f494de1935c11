"""FIR filtering of StyleGAN2 (LIA's [1, 3, 3, 1] low-pass): the ``Blur`` and ``Upsample`` layers and the forms
they run in.

The separable kernel ``K = outer(taps, taps) / sum**2`` (sum 1); upsampling by 2 uses ``4 K`` so the
zero-inserted signal keeps its DC gain. Both layers compute upfirdn (zero-insert, pad, convolve, keep every
``down``-th sample; the literal form is ``fir`` in ``tests/reference/lia_functional.py``) as single
(transposed) depthwise convolutions on CPU, as two banded matmuls on CUDA (:func:`fir_by_matmul`: tensor
cores) and, Blur under ``torch.compile``, as shifted taps (:func:`fir_by_taps`), which Inductor fuses with
the pointwise ops around it. The kernel is a buffer named ``kernel``, as in the official checkpoints.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


def make_fir_kernel(taps: Sequence[float] = FIR_TAPS, gain: float = 1.0) -> torch.Tensor:
    """Separable 2-D FIR kernel: outer(taps, taps) normalised to sum ``gain``. Returns (k, k) float32."""
    t = torch.tensor(taps, dtype=torch.float32)
    kernel = torch.outer(t, t)
    return kernel / kernel.sum() * gain


def _per_channel(op, x: torch.Tensor, kernel: torch.Tensor, **kwargs) -> torch.Tensor:
    """Apply a single-channel conv ``op`` with a (k, k) kernel to every channel of x (B, C, H, W).

    A depthwise (C-group) convolution, except for float64 on CPU, where grouped convs fall back to a
    per-group loop: there the channels are folded into the batch (same sums, one plain conv).
    """
    B, C, H, W = x.shape
    weight = kernel.to(x)[None, None]  # (1, 1, k, k)
    if x.dtype == torch.float64 and x.device.type == "cpu":
        out = op(x.reshape(B * C, 1, H, W), weight, **kwargs)
        return out.reshape(B, C, *out.shape[2:])
    return op(x, weight.expand(C, 1, *kernel.shape), groups=C, **kwargs)


def fir_by_taps(x: torch.Tensor, kernel: torch.Tensor, padding: int) -> torch.Tensor:
    """The depthwise FIR of :class:`Blur` as a weighted sum of k*k shifted views of the padded input.

    Same sums as the convolution. Used under ``torch.compile`` only: Inductor turns it (and the
    pointwise ops around it: demodulation, bias, leaky ReLU, the next layer's modulation) into one
    kernel, while a depthwise convolution stays a separate cuDNN call with its own pass over memory.
    Eager, it would cost k*k passes. x: (B, C, H, W) -> (B, C, H + 2 padding - k + 1, ...).

    Not used for :class:`Upsample`: the RGB and flow-logit skips chain ``Upsample`` across scales, and
    Inductor inlines the whole chain into the last scale's kernel, recomputing every coarser scale per
    pixel (``benchmarks/RESULTS.md``); the cuDNN call keeps each scale a buffer.
    """
    k = kernel.shape[0]
    x = F.pad(x, (padding,) * 4)
    H, W = x.shape[2] - k + 1, x.shape[3] - k + 1
    taps = kernel.flip(0, 1).to(x.dtype)  # correlation weights (conv2d semantics)
    out = x[:, :, :H, :W] * taps[0, 0]
    for i in range(k):
        for j in range(k):
            if i or j:
                out = out + x[:, :, i : i + H, j : j + W] * taps[i, j]
    return out


@functools.lru_cache(maxsize=128)
def fir_matrix(length: int, taps: tuple[float, ...], up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0),
               dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> torch.Tensor:
    """1-D ``upfirdn`` along an axis of ``length`` samples as a (length_out, length) matrix M (y = M x).

    The same steps as upfirdn (``fir`` in ``tests/reference/lia_functional.py``) on one axis: zero-insert ``up``, pad ``pad`` (negative crops),
    convolve with ``taps`` (a true convolution), keep every ``down``-th sample. Each row holds at most
    ``len(taps)`` non-zeros. Cached (treat as read-only).
    """
    k = len(taps)
    weights = torch.tensor(taps, dtype=torch.float64).flip(0)  # correlation weights
    out_len = (length * up + pad[0] + pad[1] - k) // down + 1
    rows = torch.arange(out_len) * down - pad[0]  # first tap's position in the zero-inserted signal
    matrix = torch.zeros(out_len, length, dtype=torch.float64)
    for m in range(k):
        q = rows + m
        valid = (q >= 0) & (q < length * up) & (q % up == 0)
        matrix[torch.arange(out_len)[valid], q[valid] // up] += weights[m]
    return matrix.to(dtype=dtype, device=device)


def fir_by_matmul(x: torch.Tensor, taps: Sequence[float], gain: float = 1.0, up: int = 1, down: int = 1,
                  pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """upfirdn with the separable kernel ``outer(taps, taps) / sum**2 * gain``, as two banded matmuls.

    ``M_h x M_w^T``: both passes run on the tensor cores, where the depthwise convolution runs on CUDA
    cores. Dense rows cost ``2 * length`` FLOPs per output sample instead of ``2 * len(taps)``: a win on
    GPUs, not on CPUs (:class:`Blur` uses it on CUDA only), for every map size (``benchmarks/RESULTS.md``).
    Both memory formats are kept: NCHW maps multiply their rows, channels_last maps (B, H, W, C)
    batches of (W, C) and (H, W * C) matrices, without a transpose. x: (B, C, H, W) -> upfirdn's shape.
    """
    B, C, H, W = x.shape
    total = float(sum(taps))
    norm = tuple(t / total for t in taps)
    m_h = fir_matrix(H, tuple(t * gain for t in norm), up, down, tuple(pad), x.dtype, x.device)  # (H', H)
    m_w = fir_matrix(W, norm, up, down, tuple(pad), x.dtype, x.device)  # (W', W)
    if is_channels_last(x):
        y = torch.matmul(m_w, x.permute(0, 2, 3, 1))  # (B, H, W', C)
        y = torch.matmul(m_h, y.reshape(B, H, -1))  # (B, H', W' * C)
        return y.view(B, m_h.shape[0], m_w.shape[0], C).permute(0, 3, 1, 2)  # NCHW view, channels_last memory
    y = torch.matmul(x, m_w.t())  # (B, C, H, W')
    return torch.matmul(m_h, y)  # (B, C, H', W')


class FIRFilter(nn.Module):
    """What :class:`Blur` and :class:`Upsample` share: the taps, the gain and the (k, k) ``kernel`` buffer
    ``outer(taps, taps) / sum**2 * gain`` (the official checkpoints' key). The matmul and tap forms run from
    the taps, so loading a ``kernel`` that is not this one is refused rather than silently ignored."""

    def __init__(self, taps: Sequence[float], gain: float):
        super().__init__()
        self.taps, self.gain = tuple(float(t) for t in taps), gain
        self.register_buffer("kernel", make_fir_kernel(taps, gain))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:  # fmt: skip
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)  # fmt: skip
        expected = make_fir_kernel(self.taps, self.gain)
        if not torch.allclose(self.kernel.detach().cpu().float(), expected, rtol=1e-5, atol=1e-7):
            error_msgs.append(f"{prefix}kernel is not the FIR kernel of taps {self.taps} with gain {self.gain}")


class Blur(FIRFilter):
    """Depthwise FIR low-pass with symmetric zero padding: (B, C, H, W) -> (B, C, H + 2p - k + 1, ...).

    ``gain`` is 1 for the encoder's anti-aliasing blur and ``factor**2 = 4`` after a stride-2
    transposed conv (the zero-inserted signal has 1/4 of the energy). ``down``: keep every ``down``-th
    output sample (for a stride-``down`` 1x1 conv after it, which reads no others).

    Three forms of the same sums: a depthwise convolution (CPU), two banded matmuls on CUDA
    (:func:`fir_by_matmul`) and shifted taps under ``torch.compile`` (:func:`fir_by_taps`).
    """

    def __init__(self, padding: int, gain: float = 1.0, taps: Sequence[float] = FIR_TAPS, down: int = 1):
        super().__init__(taps, gain)
        self.padding, self.down = padding, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, down = self.padding, self.down
        if torch.compiler.is_compiling():
            out = fir_by_taps(x, self.kernel, p)
            return out if down == 1 else out[:, :, ::down, ::down]
        if x.is_cuda:
            return fir_by_matmul(x, self.taps, self.gain, down=down, pad=(p, p))
        # conv2d correlates, so flip: exactly upfirdn(x, K, pad=(p, p))[..., ::down, ::down].
        return _per_channel(F.conv2d, x, self.kernel.flip(0, 1), padding=p, stride=down)


class Upsample(FIRFilter):
    """2x FIR upsampling (zero insertion, then ``4 K`` with pads (2, 1)): (B, C, H, W) -> (B, C, 2H, 2W).

    One depthwise transposed conv (stride 2, padding 1), the same sums as upfirdn with ``4K``, up 2, pads
    (2, 1); two banded matmuls on CUDA (:func:`fir_by_matmul`).
    """

    def __init__(self, taps: Sequence[float] = FIR_TAPS, factor: int = 2):
        super().__init__(taps, factor**2)
        self.factor = factor
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)  # (2, 1) for 4 taps, factor 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda and not torch.compiler.is_compiling():  # tensor cores, see fir_by_matmul
            return fir_by_matmul(x, self.taps, self.gain, up=self.factor, pad=self.pad)
        k = self.kernel.shape[0]
        pad0, pad1 = self.pad
        # A transposed conv is zero insertion ((H-1)s+1 samples), padding k-1-P before and k-1-P+op after,
        # then a true convolution with its weight: choose P, op to reproduce upfirdn's (pad0, pad1 + s - 1).
        return _per_channel(F.conv_transpose2d, x, self.kernel, stride=self.factor, padding=k - 1 - pad0,
                            output_padding=pad1 - pad0 + self.factor - 1)


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a (B, C, H, W) tensor is stored channels-last (NHWC); batch-broadcast views count too.

    Looks at one sample, so ``Tensor.expand``-ed appearance features (batch stride 0) are judged by
    their layout. For C = 1 or H = W = 1 both layouts coincide and the answer is False.
    """
    one = x[:1]
    return one.is_contiguous(memory_format=torch.channels_last) and not one.is_contiguous()
