"""Canny edge maps: the structure condition of the ControlNet first-frame editor.

``lllyasviel/sd-controlnet-canny`` was trained on edge maps from OpenCV's ``cv2.Canny(image, 100, 200)``
on the RGB image, so this is that call: 3x3 Sobel gradients of 0..255 pixels with the L1 magnitude
``|gx| + |gy|`` (a 0→255 step gives 1020), on a colour image the channel with the largest magnitude at
each pixel, non-maximum suppression and hysteresis; no Gaussian blur first.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

from ..media.image import to_uint8

__all__ = ["canny_edges"]


@torch.no_grad()
def canny_edges(image: torch.Tensor, low: float = 100.0, high: float = 200.0) -> torch.Tensor:
    """Canny edge map of an image, ``cv2.Canny(pixels, low, high)``.

    ``image``: (C, H, W) float in [-1, 1] (C = 3 or 1). ``low`` / ``high``: hysteresis thresholds on the
    L1 Sobel magnitude of 0..255 pixels (ControlNet's annotator uses 100 / 200). Returns (H, W) bool on
    the CPU, True on edges (one pixel thick).
    """
    import cv2  # opencv-python-headless; imported here so that `import leo_video` stays light

    if image.ndim != 3:
        raise ValueError(f"canny_edges expects (C, H, W), got {tuple(image.shape)}")
    if not 0 <= low <= high:
        raise ValueError(f"canny_edges needs 0 <= low <= high, got low={low}, high={high}")
    pixels = np.ascontiguousarray(rearrange(to_uint8(image.cpu()), "c h w -> h w c").numpy())  # (H, W, C) uint8
    return torch.from_numpy(cv2.Canny(pixels, low, high) > 0)  # (H, W) bool
