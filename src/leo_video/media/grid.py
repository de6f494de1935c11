"""Side-by-side / grid videos and PNG contact sheets of several videos.

Pixel values always go through the fixed mapping of :func:`leo_video.media.image.to_uint8`
((x + 1) / 2 * 255, clamped): a dark video stays dark, it is never stretched per video.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image, ImageDraw

from .image import numpy_to_frames, save_image, to_uint8

WHITE = 1.0  # in [-1, 1]

VideoLike = torch.Tensor | np.ndarray


def as_video_tensor(video: VideoLike) -> torch.Tensor:
    """Float ``(T, 3, H, W)`` in [-1, 1] from float ``(T, 3, H, W)``/``(3, H, W)`` or uint8 ``(T, H, W, 3)``."""
    if isinstance(video, np.ndarray) or video.dtype == torch.uint8:
        video = numpy_to_frames(np.asarray(video))
    video = video.detach().float().cpu()
    if video.ndim == 3:
        video = video[None]
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"expected a video (T, 3, H, W), got {tuple(video.shape)}")
    return video


def hold_last_frame(video: torch.Tensor, length: int) -> torch.Tensor:
    """Pad ``(T, 3, H, W)`` to ``(length, 3, H, W)`` by repeating its last frame."""
    missing = length - video.shape[0]
    if missing <= 0:
        return video[:length]
    return torch.cat([video, video[-1:].expand(missing, -1, -1, -1)])


def make_grid(
    videos: Sequence[VideoLike], ncols: int | None = None, padding: int = 2, pad_value: float = WHITE
) -> torch.Tensor:
    """Tile videos into one grid video, row-major: ``N x (T, 3, H, W)`` -> ``(T_max, 3, H', W')``.

    ``ncols`` defaults to all videos side by side. Shorter videos hold their last frame; videos of
    another size are resized to the first one's. ``padding`` pixels of ``pad_value`` (white) separate cells.
    (torchvision's ``make_grid`` tiles images, not videos of unequal lengths and sizes, and is not a dependency.)
    """
    if not videos:
        raise ValueError("make_grid needs at least one video")
    clips = [as_video_tensor(v) for v in videos]
    T = max(v.shape[0] for v in clips)
    H, W = clips[0].shape[-2:]
    clips = [hold_last_frame(_resize_to(v, H, W), T) for v in clips]
    ncols = len(clips) if ncols is None else max(1, min(ncols, len(clips)))
    nrows = math.ceil(len(clips) / ncols)
    blank = torch.full_like(clips[0], pad_value)
    clips += [blank] * (nrows * ncols - len(clips))
    cells = torch.stack([F.pad(v, (0, padding, 0, padding), value=pad_value) for v in clips])  # (N, T, 3, H+p, W+p)
    grid = rearrange(cells, "(r c) t ch h w -> t ch (r h) (c w)", r=nrows, c=ncols)
    return grid[..., : grid.shape[-2] - padding, : grid.shape[-1] - padding]  # drop the outer gutter


def caption_video(video: VideoLike, text: str, height: int = 12) -> torch.Tensor:
    """``video`` with ``text`` on a white strip under it, the same in every frame: ``(T, 3, H + height, W)``.

    For grids whose cells need names (the demo's GIF); PIL's default bitmap font, about 6 pixels a character,
    so a 64-pixel cell holds about 10.
    """
    clip = as_video_tensor(video)
    T, _, H, W = clip.shape
    strip = Image.new("RGB", (W, height), (255, 255, 255))
    ImageDraw.Draw(strip).text((2, max(0, (height - 11) // 2)), text, fill=(0, 0, 0))
    strip_frames = numpy_to_frames(np.asarray(strip)[None])  # (1, 3, height, W) in [-1, 1]
    return torch.cat([clip, strip_frames.expand(T, -1, -1, -1)], dim=2)


def _resize_to(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if video.shape[-2:] == (height, width):
        return video
    return F.interpolate(video, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def sample_frame_indices(length: int, num_frames: int) -> list[int]:
    """``num_frames`` evenly spaced indices from 0 to ``length - 1`` (both ends included)."""
    if num_frames <= 1:
        return [0]
    return np.linspace(0, length - 1, num_frames).round().astype(int).tolist()


def contact_sheet(
    videos: Sequence[VideoLike], num_frames: int = 8, labels: Sequence[str] | None = None, gutter: int = 4
) -> Image.Image:
    """A still overview: one row per video, ``num_frames`` evenly spaced frames per row, white gutters.

    Every video is resized to the first one's frame size. With ``labels`` (one per video) a text
    column on the left names each row.
    """
    clips = [as_video_tensor(v) for v in videos]
    if not clips:
        raise ValueError("contact_sheet needs at least one video")
    H, W = clips[0].shape[-2:]
    rows = [_resize_to(v[sample_frame_indices(v.shape[0], num_frames)], H, W) for v in clips]
    rows = [hold_last_frame(r, num_frames) if r.shape[0] < num_frames else r for r in rows]
    sheet = make_grid([r for row in rows for r in row.unbind(0)], ncols=num_frames, padding=gutter)  # (1, 3, H', W')
    sheet = F.pad(sheet, (gutter,) * 4, value=WHITE)
    image = Image.fromarray(rearrange(to_uint8(sheet[0]), "c h w -> h w c").numpy())
    return _add_labels(image, labels, row_height=H + gutter, top=gutter) if labels else image


def _add_labels(image: Image.Image, labels: Sequence[str], row_height: int, top: int) -> Image.Image:
    draw_probe = ImageDraw.Draw(image)
    width = max(int(draw_probe.textlength(str(label))) for label in labels) + 8
    out = Image.new("RGB", (image.width + width, image.height), (255, 255, 255))
    out.paste(image, (width, 0))
    draw = ImageDraw.Draw(out)
    for row, label in enumerate(labels):
        y = top + row * row_height + row_height // 2 - 6
        draw.text((4, y), str(label), fill=(0, 0, 0))
    return out


def save_contact_sheet(
    path: str | os.PathLike,
    videos: Sequence[VideoLike],
    num_frames: int = 8,
    labels: Sequence[str] | None = None,
) -> Path:
    """Write :func:`contact_sheet` of ``videos`` to ``path`` (PNG/JPEG by suffix) atomically; returns the path."""
    if labels is not None and len(labels) != len(videos):
        raise ValueError(f"got {len(labels)} labels for {len(videos)} videos")
    return save_image(path, contact_sheet(videos, num_frames=num_frames, labels=labels))
