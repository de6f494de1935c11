"""Fused GPU kernels (Triton) for the memory-bound pointwise work of the StyleGAN2 layers (issue 22).

Each op is one public function that runs a Triton kernel on CUDA tensors and its plain-PyTorch reference
everywhere else (CPU, MPS, float64, under ``torch.compile``, where Inductor fuses the reference's ops itself),
the pattern of StyleGAN2-ADA's ``bias_act(..., impl='cuda'|'ref')``: :func:`~leo_video.kernels.bias_act.bias_act`.
Triton is optional: without it every op runs its reference. The fused paths are on by default and switched off
by ``LEO_FUSED=0`` in the environment (always wins) or :func:`set_fused` (``train.fused_kernels``).
"""

from __future__ import annotations

import functools
import os

FUSED_ENV = "LEO_FUSED"
_switch = {"fused": True}


def set_fused(enabled: bool) -> None:
    """Turn the fused kernels on or off for this process (``LEO_FUSED=0`` keeps them off either way)."""
    _switch["fused"] = bool(enabled)


def fused_enabled() -> bool:
    """Whether fused kernels may run: :func:`set_fused` not off, ``LEO_FUSED`` not ``0``, triton importable."""
    return _switch["fused"] and os.environ.get(FUSED_ENV, "1") != "0" and triton_available()


@functools.cache
def triton_available() -> bool:
    """Whether ``import triton`` works (asked on the first CUDA call only: CPU runs never import it)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
