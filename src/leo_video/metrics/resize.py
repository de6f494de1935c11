"""The resizes of the FVD protocol — one code path for real and generated clips.

* :func:`tf1_resize_bilinear` — the I3D input resize of the original FVD (Unterthiner et al., 2018:
  ``tf.image.resize_bilinear(frames, [224, 224])``). TF1's defaults are ``align_corners=False`` and
  ``half_pixel_centers=False``: output pixel ``i`` samples the input at ``i * in / out`` (the legacy
  "asymmetric" convention; no half-pixel shift, no antialiasing), interpolating between
  ``floor`` and ``min(ceil, in - 1)``. Those are the numbers FVD was defined and published with, so
  that is what we compute — not ``F.interpolate(align_corners=False)``, which samples at
  ``(i + 0.5) * in / out - 0.5`` (TF2's default and StyleGAN-V's TorchScript port).
  Written out because no PyTorch op has that convention.
* :func:`clip_at_resolution` — the optional ``--resolution`` step (centre square, antialiased
  bilinear, rounded to uint8 as if stored at that size), applied to real and generated clips alike.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..media.image import center_crop_box

__all__ = ["clip_at_resolution", "tf1_resize_bilinear"]


def _legacy_axis(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lower/upper source indices and lerp weights of one axis, in float32 as TF's kernel computes them."""
    scale = np.float32(in_size) / np.float32(out_size)
    position = np.arange(out_size, dtype=np.float32) * scale  # LegacyScaler: i * scale
    floor = np.floor(position)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(position).astype(np.int64), in_size - 1)
    lerp = position - floor
    return (torch.from_numpy(lower).to(device), torch.from_numpy(upper).to(device),
            torch.from_numpy(lerp).to(device))


def tf1_resize_bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``resize_bilinear(align_corners=False, half_pixel_centers=False)`` of ``x (..., H, W)`` float.

    Returns ``(..., size[0], size[1])`` in ``x``'s dtype, computed in TF's order: along x on the two
    source rows, then along y (``top + (bottom - top) * y_lerp``).
    """
    height, width = x.shape[-2:]
    y0, y1, ly = _legacy_axis(height, size[0], x.device)
    x0, x1, lx = _legacy_axis(width, size[1], x.device)
    lx, ly = lx.to(x.dtype), ly.to(x.dtype)[:, None]
    top_rows, bottom_rows = x.index_select(-2, y0), x.index_select(-2, y1)  # (..., out_h, W)
    top = top_rows[..., x0] + (top_rows[..., x1] - top_rows[..., x0]) * lx  # (..., out_h, out_w)
    bottom = bottom_rows[..., x0] + (bottom_rows[..., x1] - bottom_rows[..., x0]) * lx
    return top + (bottom - top) * ly


def clip_at_resolution(clip: np.ndarray | torch.Tensor, size: int) -> np.ndarray:
    """A uint8 clip ``(T, H, W, 3)`` centre-cropped to a square and resized to ``(T, size, size, 3)`` uint8.

    Antialiased bilinear (``F.interpolate(antialias=True)``), rounded: the clip as if stored at
    ``size``. Real and generated clips both go through here, so ``--resolution`` treats them alike.
    """
    frames = torch.as_tensor(np.asarray(clip)).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    top, left, side, _ = center_crop_box(*frames.shape[-2:])
    frames = frames[..., top : top + side, left : left + side]  # (T, 3, side, side)
    if side != size:
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (T, size, size, 3)
