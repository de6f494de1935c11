"""Motion-code statistics for ``eval motion``: do generated code sequences move like real ones?

LEO's LMDM generates sequences of motion codes ``(T, M)`` (M = motion dims). Two checks compare a
generated set against codes encoded from real videos, directly in code space (no renderer, no I3D):

* :func:`code_window_frechet` — the Fréchet distance between the distributions of *windows* of
  codes: every ``window`` consecutive codes, flattened to a ``window * M`` vector, taken every
  ``stride`` steps from each sequence. It sees the joint distribution of poses and their short-term
  dynamics, as FVD does for pixels.
* :func:`code_jitter` — frame-to-frame jitter, the mean of ``|| alpha_{i+1} - alpha_i ||_2`` over all
  consecutive pairs of all sequences (every step weighs the same). Too high: shaky motion; too low:
  frozen motion. :func:`motion_report` gives its real-vs-fake ratio (1 is ideal).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from einops import rearrange

from ..errors import InputError
from .frechet import frechet_distance, to_numpy

__all__ = ["code_jitter", "code_window_frechet", "code_windows", "motion_report"]


def code_windows(codes: Sequence[Any], window: int = 16, stride: int | None = None, relative: bool = False) -> np.ndarray:
    """All windows of ``window`` consecutive codes, flattened: ``(num_windows, window * M)`` float64.

    From each sequence ``(T, M)`` windows start at ``0, stride, 2 * stride, ...`` while they fit;
    sequences shorter than ``window`` give none. ``stride`` defaults to ``max(window // 2, 1)``.
    With ``relative=True`` each window's first code is subtracted from all of its codes (motion
    relative to the window start, like LEO's LMC residuals ``m_i = alpha_i - alpha_1``).
    """
    if window < 1:
        raise InputError(f"window: must be >= 1, got {window}")
    stride = max(window // 2, 1) if stride is None else stride
    if stride < 1:
        raise InputError(f"stride: must be >= 1, got {stride}")
    out = []
    for seq in codes:
        a = _as_codes(seq)  # (T, M)
        for start in range(0, a.shape[0] - window + 1, stride):
            w = a[start : start + window]  # (window, M)
            out.append(rearrange(w - w[:1] if relative else w, "t m -> (t m)"))
    if not out:
        raise InputError(f"codes: no sequence has at least {window} codes (window = {window})")
    return np.stack(out)  # (num_windows, window * M)


def code_window_frechet(
    real_codes: Sequence[Any],
    fake_codes: Sequence[Any],
    window: int = 16,
    stride: int | None = None,
    relative: bool = False,
) -> float:
    """Fréchet distance between flattened code windows of real and generated sequences ``(T, M)``.

    See :func:`code_windows` for how windows are cut; the distance is
    :func:`leo_video.metrics.frechet.frechet_distance` on the two window sets (float64). Use at
    least a few times ``window * M`` windows per side for a stable covariance.
    """
    real = code_windows(real_codes, window, stride, relative)
    fake = code_windows(fake_codes, window, stride, relative)
    return frechet_distance(real, fake)


def code_jitter(codes: Sequence[Any]) -> float:
    """Mean ``|| alpha_{i+1} - alpha_i ||_2`` over all consecutive pairs of all sequences ``(T, M)``."""
    steps = [np.linalg.norm(np.diff(_as_codes(seq), axis=0), axis=1) for seq in codes]  # each (T - 1,)
    steps = [s for s in steps if s.size]
    if not steps:
        raise InputError("codes: need at least one sequence with 2 or more codes")
    return float(np.concatenate(steps).mean())


def motion_report(
    real_codes: Sequence[Any],
    fake_codes: Sequence[Any],
    window: int = 16,
    stride: int | None = None,
    relative: bool = False,
) -> dict[str, float | int]:
    """Window Fréchet distance, jitter of both sets and their ratio ``jitter_fake / jitter_real``."""
    stride = max(window // 2, 1) if stride is None else stride
    jitter_real, jitter_fake = code_jitter(real_codes), code_jitter(fake_codes)
    return {
        "code_window_fd": code_window_frechet(real_codes, fake_codes, window, stride, relative),
        "jitter_real": jitter_real,
        "jitter_fake": jitter_fake,
        "jitter_ratio": jitter_fake / jitter_real if jitter_real > 0 else float("inf"),
        "num_real_windows": int(code_windows(real_codes, window, stride, relative).shape[0]),
        "num_fake_windows": int(code_windows(fake_codes, window, stride, relative).shape[0]),
        "num_real_sequences": len(real_codes),
        "num_fake_sequences": len(fake_codes),
        "window": window,
        "stride": stride,
    }


def _as_codes(seq: Any) -> np.ndarray:
    a = to_numpy(seq, np.float64)
    if a.ndim != 2:
        raise InputError(f"codes: each sequence must be (T, M), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError("codes: NaN or inf in a code sequence")
    return a
