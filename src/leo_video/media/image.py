"""Still images and the fixed value mapping between model tensors and pixels.

* Model tensors are float in [-1, 1], channels first: an image ``(3, H, W)``, a video ``(T, 3, H, W)``.
* At the I/O boundary pixels are uint8, channels last: ``(H, W, 3)`` or ``(T, H, W, 3)``.
* [-1, 1] -> uint8 is always ``((x + 1) / 2 * 255).round().clamp(0, 255)`` (:func:`to_uint8`) and
  uint8 -> [-1, 1] is ``p / 127.5 - 1`` (:func:`from_uint8`); never a per-image min-max.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from ..utils.atomic import atomic_path

MIN_IMAGE_SIDE = 16  # smaller images carry no usable content for a 64^2+ model
MAX_IMAGE_SIDE = 16384
MAX_IMAGE_PIXELS = 100_000_000  # refused before decoding (Pillow's decompression-bomb check)
# Above this, load_image(size=...) first shrinks by an integer factor in Pillow (box filter, in C):
# resizing an 8000x8000 still straight to 64x64 went through a 768 MB float tensor (1.3 GB peak).
REDUCE_ABOVE_PIXELS = 16_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def is_still_path(path: str | os.PathLike) -> bool:
    """True for a file name with a still-image suffix (an animated gif is a video, not a still)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


# ----------------------------------------------------------------------------- value mapping


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Map float pixels in [-1, 1] to uint8 with the project's fixed mapping; same shape.

    ``(..., 3, H, W)`` float -> ``(..., 3, H, W)`` uint8. Out-of-range values are clamped.
    """
    return ((x.detach().float() + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8)


def from_uint8(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Map uint8 pixels to float32 in [-1, 1] (``p / 127.5 - 1``); same shape and layout."""
    if isinstance(x, np.ndarray):
        # a read-only array (a decoded frame, a broadcast view) is copied: torch warns on non-writable memory
        x = torch.from_numpy(np.require(x, requirements=("C", "W")))
    return x.float() / 127.5 - 1


def frames_to_numpy(video: torch.Tensor) -> np.ndarray:
    """``(T, 3, H, W)`` float in [-1, 1] -> ``(T, H, W, 3)`` uint8 numpy (also ``(3, H, W)`` -> ``(H, W, 3)``)."""
    return rearrange(to_uint8(video.cpu()), "... c h w -> ... h w c").numpy()


def numpy_to_frames(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 -> ``(T, 3, H, W)`` float in [-1, 1] (also ``(H, W, 3)`` -> ``(3, H, W)``)."""
    return rearrange(from_uint8(frames), "... h w c -> ... c h w").contiguous()


# ----------------------------------------------------------------------------- resizing


def center_crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """The largest centred square of an ``height x width`` image as ``(top, left, side, side)``."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def resize_center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop uint8 frames to a square and resize them to ``size x size`` with antialiasing.

    ``(T, H, W, 3)`` -> ``(T, size, size, 3)`` or ``(H, W, 3)`` -> ``(size, size, 3)``, uint8.
    """
    single = frames.ndim == 3
    batch = frames[None] if single else frames
    top, left, side, _ = center_crop_box(batch.shape[1], batch.shape[2])
    batch = batch[:, top : top + side, left : left + side]
    out = resize_square(batch, size)
    return out[0] if single else out


def resize_square(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize square uint8 frames ``(T, S, S, 3)`` to ``(T, size, size, 3)`` (antialiased bicubic)."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return np.ascontiguousarray(frames)
    x = rearrange(torch.from_numpy(np.ascontiguousarray(frames)), "t h w c -> t c h w").float()
    # antialias=True low-pass filters before downsampling (as PIL does), so fine textures don't alias.
    x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8)
    return rearrange(x, "t c h w -> t h w c").numpy()


# ----------------------------------------------------------------------------- loading and saving


def open_image_checked(path: str | os.PathLike) -> Image.Image:
    """Open an image header with the size limits applied before any pixel is decoded.

    Raises :class:`InputError` naming the file when it is missing, empty, not an image, smaller than
    16 px or larger than 16k px a side / 100 MP (Pillow's decompression-bomb protection).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 MP and refuses above ~179 MP; our own limits below apply instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: image too large (over {MAX_IMAGE_PIXELS // 1_000_000} MP); refused") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{path}: not an image (unrecognised format)") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from exc
    width, height = image.size
    if max(width, height) > MAX_IMAGE_SIDE or width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise InputError(f"{path}: image too large ({width}x{height}; limit {MAX_IMAGE_SIDE} px a side, 100 MP)")
    if min(width, height) < MIN_IMAGE_SIDE:
        image.close()
        raise InputError(f"{path}: image too small ({width}x{height}; need at least {MIN_IMAGE_SIDE} px a side)")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Transparency (RGBA, LA, palette with transparency) is composited on white; 16-bit and 32-bit
    greyscale are scaled down to 8 bits (not clipped); CMYK/YCbCr/1-bit go through Pillow's converters.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _high_depth_grey_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def _high_depth_grey_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow's convert("RGB") clips 16-bit values at 255 (a white image), so rescale by hand.
    values = np.asarray(image).astype(np.float64)
    peak = 65535.0 if (image.mode.startswith("I;16") or values.max() > 255) else 255.0
    if image.mode == "F":
        peak = 1.0 if values.max() <= 1.0 else 255.0
    grey = np.clip(np.round(values / peak * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def load_image_uint8(path: str | os.PathLike, at_least: int | None = None) -> np.ndarray:
    """Load any still as uint8 RGB ``(H, W, 3)`` (EXIF orientation applied); InputError naming the file.

    ``at_least``: a huge image (over 16 MP) may come back shrunk by an integer factor (JPEG: DCT
    scaling while decoding; else a box filter), its shorter side staying at least ``4 * at_least``
    pixels, so that memory stays small.
    """
    path = Path(path)
    image = open_image_checked(path)
    try:
        with image:
            huge = bool(at_least) and image.width * image.height > REDUCE_ABOVE_PIXELS
            if huge:
                image.draft(None, (4 * at_least, 4 * at_least))  # JPEG decodes at 1/2 ... 1/8 scale; others: no-op
            ImageOps.exif_transpose(image, in_place=True)
            if huge and image.mode in ("RGB", "RGBA", "L", "LA"):  # shrink before to_rgb copies it
                image = _shrink(image, at_least)
            rgb = to_rgb(image)
            return np.asarray(_shrink(rgb, at_least) if huge else rgb).copy()
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: corrupt or truncated image ({exc})") from exc


def _shrink(image: Image.Image, at_least: int) -> Image.Image:
    """Divide both sides by the largest integer keeping the shorter side >= ``4 * at_least`` (box filter)."""
    factor = min(image.size) // (4 * at_least)
    return image.reduce(factor) if factor > 1 else image


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """Load a still as a square RGB tensor ``(3, S, S)`` float in [-1, 1].

    Non-square images are centre-cropped to a square; with ``size`` the square is resized to
    ``size x size`` (antialiased), else S is the shorter side. RGBA / LA / transparent palettes are
    composited on white; greyscale, palette and 16-bit images become RGB.
    """
    pixels = load_image_uint8(path, at_least=size)  # (H, W, 3)
    if size is None:
        size = min(pixels.shape[:2])
    return numpy_to_frames(resize_center_crop(pixels, size))  # (3, S, S)


def save_image(path: str | os.PathLike, image: torch.Tensor | np.ndarray | Image.Image) -> Path:
    """Save an image atomically (format from the suffix, e.g. .png/.jpg).

    ``image``: ``(3, H, W)`` float in [-1, 1], ``(H, W, 3)`` uint8 numpy, or a PIL image.
    """
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"save_image expects (3, H, W), got {tuple(image.shape)}")
        image = frames_to_numpy(image)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path
