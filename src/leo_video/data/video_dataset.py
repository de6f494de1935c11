"""`VideoDataset`: frame pairs (LIA training) and clips (motion diffusion, evaluation) from a folder.

The folder holds video files and/or frame folders, optionally split into ``train/`` and ``test/``
(the layout TaichiHD, FaceForensics and CelebV-HQ have after the usual preprocessing, and what
``leo-video prepare`` / ``make-synthetic`` write)::

    root/train/clip_a.mp4   root/train/clip_b/0001.png ...   root/test/clip_c.mp4

Items are dicts of float tensors in [-1, 1]:

* ``mode="pairs"``: ``source`` and ``driving`` ``(3, S, S)``, two random frames of one video with the
  *same* random augmentation (LIA's self-supervised reconstruction pairs), plus ``video_index`` and
  ``frames`` (the two frame indices).
* ``mode="clips"``: ``video`` ``(T, 3, S, S)`` of ``clip_length`` frames taken every ``frame_stride``
  frames, plus ``video_index`` and ``start``.

Randomness is keyed on ``(seed, epoch, index)``, so an item is reproducible whichever worker reads it;
an index with a ``.seed`` attribute (the trainer's :class:`~leo_video.train.sampler.SampleIndex`) keys
it on ``(seed, index.seed, index)`` instead, so every pass of a training run draws new pairs and a
resumed run draws the same ones.
Unreadable videos are skipped with one warning each (``skipped`` lists them); a training run never
dies on one bad file. Decoders are opened lazily inside each DataLoader worker.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..config import param, validate
from ..errors import InputError
from ..media.image import is_still_path, numpy_to_frames
from ..media.video import FRAME_SUFFIXES, VIDEO_SUFFIXES, VideoReader, natural_key

SPLITS = ("train", "test")


class SkippedVideoWarning(UserWarning):
    """A video in a dataset folder could not be read and is left out."""


@dataclass
class AugmentConfig:
    """Random augmentation applied identically to every frame of an item (all off by default); also the
    ``data.augment`` section of the LIA config, validated by :func:`leo_video.config.validate`.

    LIA's released data pipeline: Taichi = random 224/256 crop (``crop_scale: [0.875, 0.875]``) +
    flip + colour jitter 0.1; TED = flip + jitter 0.1; VoxCeleb = none.
    """

    crop_scale: list[float] | None = param(None, gt=0.0, le=1.0, doc="[min, max] side fraction of a random square crop")
    flip: bool = param(False, doc="horizontal flip with probability 0.5")
    brightness: float = param(0.0, ge=0.0, lt=1.0, doc="jitter factor drawn from [1 - v, 1 + v]")
    contrast: float = param(0.0, ge=0.0, lt=1.0, doc="jitter factor drawn from [1 - v, 1 + v]")
    saturation: float = param(0.0, ge=0.0, lt=1.0, doc="jitter factor drawn from [1 - v, 1 + v]")
    hue: float = param(0.0, ge=0.0, le=0.5, doc="hue rotation in turns drawn from [-hue, hue]")
    frame_shift: float = param(0.0, ge=0.0, lt=0.5, doc="per-frame translation drawn from [-v, v] of the side, "
                               "independently for every frame of an item (edges replicated): camera-like motion "
                               "that the motion code must read whoever the person is (0: off)")
    motion_view: float = param(0.0, ge=0.0, lt=1.0, doc="pairs only: a second colour jitter of this strength "
                               "(brightness, contrast, saturation from [1 - v, 1 + v], hue from [-v/2, v/2] turns) "
                               "on the copy of the driving frame the motion encoder reads (item 'driving_view'); "
                               "the reconstruction target keeps the pair's colours, so colour cannot pass through "
                               "the motion code (0: off)")

    def cross_check(self) -> str | None:
        """Constraints between fields; returns the problem (naming the key) or None."""
        crop = self.crop_scale
        if crop is not None and (len(crop) != 2 or crop[0] > crop[1]):
            return f"crop_scale = {list(crop)} must be [min, max] with min <= max"
        return None

    @property
    def enabled(self) -> bool:
        return bool(self.crop_scale or self.flip or self.brightness or self.contrast or self.saturation or self.hue
                    or self.frame_shift or self.motion_view)


@dataclass(frozen=True)
class AugmentParams:
    """One draw of :class:`AugmentConfig`: the exact transform shared by all frames of an item, and each
    frame's own translation ``shifts`` ((dy, dx) fractions of the side per frame; None when off)."""

    crop: tuple[float, float, float] | None  # (top, left, side) as fractions of the frame
    flip: bool
    brightness: float
    contrast: float
    saturation: float
    hue: float
    shifts: tuple[tuple[float, float], ...] | None = None

    @staticmethod
    def draw(config: AugmentConfig, rng: np.random.Generator, frames: int = 1) -> "AugmentParams":
        """``frames``: the item's frame count (each gets its own shift). Without ``frame_shift`` the draws,
        and so the random stream, are those of the shared transform alone."""
        crop = None
        if config.crop_scale is not None:
            side = rng.uniform(*config.crop_scale)
            crop = (rng.uniform(0, 1 - side), rng.uniform(0, 1 - side), side)
        jitter = lambda v: float(rng.uniform(1 - v, 1 + v)) if v else 1.0  # noqa: E731
        return AugmentParams(
            crop=crop,
            flip=bool(config.flip and rng.random() < 0.5),
            brightness=jitter(config.brightness),
            contrast=jitter(config.contrast),
            saturation=jitter(config.saturation),
            hue=float(rng.uniform(-config.hue, config.hue)) if config.hue else 0.0,
            shifts=(tuple((float(dy), float(dx)) for dy, dx in rng.uniform(-1, 1, (frames, 2)) * config.frame_shift)
                    if config.frame_shift else None),
        )


def motion_view_params(strength: float, rng: np.random.Generator) -> AugmentParams:
    """The colour-only draw of ``AugmentConfig.motion_view``: brightness, contrast and saturation factors from
    [1 - v, 1 + v], a hue rotation from [-v/2, v/2] turns; no crop, flip or shift (the geometry is the target's)."""
    colour = AugmentConfig(brightness=strength, contrast=strength, saturation=strength, hue=strength / 2)
    return AugmentParams.draw(colour, rng)


def apply_augment(frames: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Apply one augmentation draw to frames ``(T, 3, S, S)`` in [-1, 1]; same shape and range.

    Colour jitter is written out here (torchvision is not a dependency): brightness scales, contrast
    blends with the mean grey, saturation blends with the greyscale image, hue rotates chroma in YIQ.
    """
    S = frames.shape[-1]
    if params.crop is not None:
        top, left, side = (round(v * S) for v in params.crop)
        side = max(side, 1)
        frames = frames[..., top : top + side, left : left + side]
        frames = F.interpolate(frames, size=(S, S), mode="bilinear", align_corners=False, antialias=True)
    if params.flip:
        frames = frames.flip(-1)
    x = (frames + 1) / 2  # [0, 1] for the colour maths
    x = x * params.brightness
    grey = _luma(x)  # (T, 1, S, S)
    x = (x - grey.mean(dim=(-2, -1), keepdim=True)) * params.contrast + grey.mean(dim=(-2, -1), keepdim=True)
    x = (x - _luma(x)) * params.saturation + _luma(x)
    if params.hue:
        x = _rotate_hue(x, params.hue)
    x = x.clamp(0, 1) * 2 - 1
    if params.shifts is not None:
        x = torch.stack([_translate(frame, round(dy * S), round(dx * S)) for frame, (dy, dx) in zip(x, params.shifts)])
    return x.contiguous()


def _translate(frame: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``frame`` (3, S, S) moved ``dy`` pixels down and ``dx`` right; the edge pixels fill what is uncovered."""
    if dy == dx == 0:
        return frame
    S, pad = frame.shape[-1], max(abs(dy), abs(dx))
    padded = F.pad(frame[None], (pad, pad, pad, pad), mode="replicate")[0]
    return padded[:, pad - dy : pad - dy + S, pad - dx : pad - dx + S]


def _luma(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of RGB ``(T, 3, H, W)`` -> ``(T, 1, H, W)``."""
    weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def _rotate_hue(x: torch.Tensor, turns: float) -> torch.Tensor:
    """Rotate the chroma (I, Q) plane of RGB ``(T, 3, H, W)`` by ``turns`` of a full circle."""
    angle = 2 * math.pi * turns
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    matrix = torch.linalg.inv(_RGB_TO_YIQ) @ rotation @ _RGB_TO_YIQ
    return torch.einsum("ij,tjhw->tihw", matrix.to(x), x)


# ----------------------------------------------------------------------------- scanning


def split_folder(root: Path, split: str | None) -> Path:
    """The folder to scan: ``root/split`` when ``root`` has split folders, else ``root`` itself."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    if split is not None and any((root / s).is_dir() for s in SPLITS):
        return root / split
    return root


def find_videos(folder: Path, stills: bool = False) -> list[Path]:
    """Video files and frame folders under ``folder`` (recursively), in natural name order.

    A folder that directly holds png/jpg files is one video (a frame folder) and is not descended;
    ``folder`` itself is one when it holds nothing else. ``stills``: every still image is a video of its own, one
    frame long, instead of a frame of its folder's video (`prepare --stills`). Symbolic links to folders are
    followed (a dataset of links to frame folders elsewhere), each real folder once, so a link cycle ends.
    """
    found, visited = [], set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in visited:
            dirnames[:] = []
            continue
        visited.add(real)
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=natural_key)
        names = [n for n in filenames if not n.startswith(".")]
        if not stills and Path(dirpath) != folder and any(Path(n).suffix.lower() in FRAME_SUFFIXES for n in names):
            found.append(Path(dirpath))
            dirnames[:] = []
            continue
        found += [Path(dirpath) / n for n in names
                  if Path(n).suffix.lower() in VIDEO_SUFFIXES or (stills and is_still_path(n))]
    if not stills and not found and any(p.suffix.lower() in FRAME_SUFFIXES for p in folder.iterdir() if p.is_file()):
        return [folder]
    return sorted(found, key=lambda p: natural_key(str(p.relative_to(folder))))


# ----------------------------------------------------------------------------- dataset


class VideoDataset(torch.utils.data.Dataset):
    """Frame pairs or clips from a folder of videos / frame folders (see the module docstring).

    Args:
        root: dataset folder (with or without ``train/`` and ``test/``).
        split: ``"train"``, ``"test"``, or None for everything under ``root``.
        mode: ``"pairs"`` (source/driving frames) or ``"clips"`` (T-frame clips).
        size: frames are centre-cropped to squares and resized to ``size x size``.
        clip_length, frame_stride: T and the step between clip frames (clips mode); videos shorter
            than ``(clip_length - 1) * frame_stride + 1`` frames are dropped (``num_too_short``).
        clip_sampling: ``"random"`` (one random clip per video and item) or ``"all"`` (every
            non-overlapping clip, deterministic; for evaluation).
        augment: optional :class:`AugmentConfig` (off when None).
        seed: base of the per-item random draws; call :meth:`set_epoch` to get new draws each epoch.
        repeats: each video appears this many times per epoch (pairs / random clips).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: Literal["train", "test"] | None = "train",
        mode: Literal["pairs", "clips"] = "pairs",
        size: int = 256,
        clip_length: int = 16,
        frame_stride: int = 1,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        clip_sampling: Literal["random", "all"] = "random",
        repeats: int = 1,
    ):
        if mode not in ("pairs", "clips"):
            raise ValueError(f"mode must be 'pairs' or 'clips', got {mode!r}")
        if clip_sampling not in ("random", "all"):
            raise ValueError(f"clip_sampling must be 'random' or 'all', got {clip_sampling!r}")
        if clip_length < 1 or frame_stride < 1 or size < 1 or repeats < 1:
            raise ValueError("clip_length, frame_stride, size and repeats must be positive")
        self.root = Path(root)
        self.mode, self.size, self.seed, self.epoch = mode, size, seed, 0
        self.clip_length, self.frame_stride = clip_length, frame_stride
        self.clip_sampling, self.repeats = clip_sampling, repeats
        if augment is not None:
            validate(augment, source="augment")  # ConfigError naming the field
        self.augment = augment if augment is not None and augment.enabled else None
        self.folder = split_folder(self.root, split)
        self.skipped: list[tuple[str, str]] = []  # (path, reason) of every video left out
        self.num_too_short = 0
        self._bad: set[int] = set()  # videos that failed while decoding an item (warned once)
        self.readers = self._open_readers()
        self._items = self._index_items()

    @property
    def clip_span(self) -> int:
        """Frames a clip covers in the source video: ``(clip_length - 1) * frame_stride + 1``."""
        return (self.clip_length - 1) * self.frame_stride + 1

    @property
    def paths(self) -> list[Path]:
        return [reader.path for reader in self.readers]

    def _open_readers(self) -> list[VideoReader]:
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: dataset folder not found")
        readers = []
        min_frames = self.clip_span if self.mode == "clips" else 1
        for path in find_videos(self.folder):
            try:
                reader = VideoReader(path, size=self.size)  # indexes the file; decodes nothing
            except InputError as exc:
                self._skip(path, exc)
                continue
            if len(reader) < min_frames:
                self.num_too_short += 1
                continue
            readers.append(reader)
        if not readers:
            detail = f"{len(self.skipped)} unreadable, {self.num_too_short} shorter than {min_frames} frames"
            raise InputError(f"{self.folder}: no usable videos or frame folders ({detail})")
        return readers

    def _skip(self, path: Path, exc: Exception) -> None:
        self.skipped.append((str(path), str(exc)))
        warnings.warn(f"skipping unreadable video: {exc}", SkippedVideoWarning, stacklevel=3)

    def _index_items(self) -> list[tuple[int, int | None]]:
        """(video index, clip start or None for a random draw) for every item of an epoch."""
        if self.mode == "clips" and self.clip_sampling == "all":
            span = self.clip_span
            return [(v, s) for v, r in enumerate(self.readers) for s in range(0, len(r) - span + 1, span)]
        return [(v, None) for _ in range(self.repeats) for v in range(len(self.readers))]

    @property
    def num_skipped(self) -> int:
        """How many videos were left out because they could not be read."""
        return len(self.skipped)

    def set_epoch(self, epoch: int) -> None:
        """Choose the random draws of this epoch (frames, clip starts, augmentations)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._items)

    def rng(self, index: int) -> np.random.Generator:
        """The generator of item ``index``: keyed on (seed, epoch, index), or on (seed, index.seed,
        index) when the index carries a per-sample ``seed`` (the trainer's ``SampleIndex``)."""
        sample_seed = getattr(index, "seed", None)
        if sample_seed is not None:
            return np.random.default_rng([self.seed, int(sample_seed), int(index)])  # as set_epoch(index.seed)
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict:
        rng = self.rng(index)
        video_index, start = self._items[index]
        for _ in range(len(self.readers)):  # a video that fails mid-file is skipped, not fatal
            if video_index not in self._bad:
                try:
                    return self._load(video_index, start, rng)
                except InputError as exc:
                    self._bad.add(video_index)
                    self._skip(self.readers[video_index].path, exc)
            video_index, start = (video_index + 1) % len(self.readers), None  # the next video instead
        raise InputError(f"{self.folder}: no video could be decoded")

    def _load(self, video_index: int, start: int | None, rng: np.random.Generator) -> dict:
        reader = self.readers[video_index]
        n = len(reader)
        if self.mode == "pairs":
            frames = rng.choice(n, size=2, replace=False) if n > 1 else np.zeros(2, dtype=int)
            pair = self._augment(numpy_to_frames(reader.read(frames)), rng)  # (2, 3, S, S)
            item = {"source": pair[0], "driving": pair[1], "video_index": video_index,
                    "frames": torch.as_tensor(frames)}
            if self.augment is not None and self.augment.motion_view:
                item["driving_view"] = apply_augment(pair[1:], motion_view_params(self.augment.motion_view, rng))[0]
            return item
        if start is None:
            start = int(rng.integers(0, n - self.clip_span + 1))
        indices = range(start, start + self.clip_span, self.frame_stride)
        video = self._augment(numpy_to_frames(reader.read(indices)), rng)  # (T, 3, S, S)
        return {"video": video, "video_index": video_index, "start": start}

    def _augment(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.augment is None:
            return frames
        return apply_augment(frames, AugmentParams.draw(self.augment, rng, frames=frames.shape[0]))

    def __repr__(self) -> str:
        return (
            f"VideoDataset({str(self.folder)!r}, mode={self.mode!r}, videos={len(self.readers)}, "
            f"items={len(self)}, size={self.size}, skipped={self.num_skipped}, too_short={self.num_too_short})"
        )

