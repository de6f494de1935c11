"""The FVD/KVD evaluation protocol: which clips are measured, and the cache of real statistics.

The protocol is StyleGAN-V's (``src/metrics/frechet_video_distance.py`` and ``metric_utils.py``):

* real clips: videos shorter than the clip span are dropped; of the rest, the first
  ``num_videos`` in listing order each give **one** clip of ``num_frames`` frames taken every
  ``subsample``-th frame, starting at a uniformly random offset (seeded here);
* generated clips: ``num_videos`` clips of ``num_frames`` frames (every ``subsample``-th frame of
  the generated video);
* features: the I3D detector (:mod:`leo_video.metrics.i3d`: by default the original FVD's
  Kinetics-400 I3D, frames resized to 224x224 by TF1's bilinear), FVD and KVD on them.

Presets: ``fvd16`` (2048 clips of 16 frames), ``fvd128`` (2048 x 128 frames) and ``fvd128_s8``
(2048 x 128 frames, every 8th frame, i.e. spanning 1017 frames).
Everything that changes the number is in :class:`FVDProtocol` and in :func:`protocol_hash`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..utils.atomic import atomic_path
from .i3d import I3D_DEFAULT, I3D_KWARGS

__all__ = [
    "ClipSpec",
    "FVDProtocol",
    "PROTOCOLS",
    "iter_real_clips",
    "load_or_compute_real_stats",
    "plan_real_clips",
    "protocol_hash",
    "real_stats_cache_path",
    "sample_real_clips",
]


@dataclass(frozen=True)
class FVDProtocol:
    """Everything that defines an FVD/KVD number (and the real-statistics cache key).

    ``num_videos`` real and generated clips of ``num_frames`` frames, every ``subsample``-th frame;
    ``seed`` draws the real clips' offsets; ``resolution`` is the square size both real and
    generated frames are brought to before I3D (centre crop + antialiased resize, one function for
    both: :func:`leo_video.metrics.resize.clip_at_resolution`; None = as stored); ``detector`` names
    the detector (``i3d-k400`` or ``stylegan-v-torchscript``; its file's sha256 keys the cache); ``ddof`` is the covariance
    normalisation (see :func:`leo_video.metrics.frechet.feature_stats`): 0, as StyleGAN-V's
    ``FeatureStats.get_mean_cov`` computes it, so our FVD numbers follow that protocol exactly.
    """

    name: str = "fvd16"
    num_videos: int = 2048
    num_frames: int = 16
    subsample: int = 1
    seed: int = 0
    resolution: int | None = None
    ddof: int = 0
    detector: str = I3D_DEFAULT
    detector_kwargs: tuple[tuple[str, bool], ...] = tuple(sorted(I3D_KWARGS.items()))

    def __post_init__(self) -> None:
        for field in ("num_videos", "num_frames", "subsample"):
            if getattr(self, field) < 1:
                raise ConfigError(f"{field}: must be >= 1, got {getattr(self, field)}")
        if self.resolution is not None and self.resolution < 1:
            raise ConfigError(f"resolution: must be >= 1 or None, got {self.resolution}")
        if self.ddof not in (0, 1):
            raise ConfigError(f"ddof: must be 0 or 1, got {self.ddof}")

    @property
    def span(self) -> int:
        """Frames a clip spans in the source video: ``(num_frames - 1) * subsample + 1``."""
        return (self.num_frames - 1) * self.subsample + 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for reports and the hash)."""
        out = dataclasses.asdict(self)
        out["detector_kwargs"] = dict(self.detector_kwargs)
        return out


PROTOCOLS: dict[str, FVDProtocol] = {
    "fvd16": FVDProtocol("fvd16", num_frames=16),
    "fvd128": FVDProtocol("fvd128", num_frames=128),
    "fvd128_s8": FVDProtocol("fvd128_s8", num_frames=128, subsample=8),
}


def protocol_hash(protocol: FVDProtocol) -> str:
    """16 hex digits of sha256 over the protocol's fields (name excluded: only what changes numbers)."""
    fields = protocol.to_dict()
    fields.pop("name")
    blob = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class ClipSpec:
    """One real clip: frames ``frame_indices`` of video ``video_index`` (in listing order)."""

    video_index: int
    frame_indices: tuple[int, ...]


def plan_real_clips(
    video_lengths: Sequence[int], num_clips: int, clip_length: int, seed: int, subsample: int = 1
) -> list[ClipSpec]:
    """Choose real clips: one per video, random offset, short videos dropped (StyleGAN-V's rule).

    Videos with fewer than ``(clip_length - 1) * subsample + 1`` frames are dropped; the first
    ``num_clips`` remaining videos (listing order) each give one clip starting at an offset drawn
    uniformly from ``[0, T - span]`` by ``numpy.random.default_rng(seed)``. Returns fewer than
    ``num_clips`` specs when there are not enough long videos (callers report the actual count).
    """
    if num_clips < 1 or clip_length < 1 or subsample < 1:
        raise InputError(
            f"clips: num_clips, clip_length and subsample must be >= 1 (got {num_clips}, {clip_length}, {subsample})"
        )
    span = (clip_length - 1) * subsample + 1
    eligible = [i for i, length in enumerate(video_lengths) if length >= span][:num_clips]
    rng = np.random.default_rng(seed)
    specs = []
    for index in eligible:
        offset = int(rng.integers(0, video_lengths[index] - span + 1))
        specs.append(ClipSpec(index, tuple(range(offset, offset + span, subsample))))
    return specs


def iter_real_clips(
    dataset_videos: Sequence[Any], num_clips: int, clip_length: int, seed: int, subsample: int = 1
) -> Iterator[Any]:
    """Yield real clips ``(clip_length, H, W, 3)`` one at a time, per :func:`plan_real_clips`.

    ``dataset_videos`` are :class:`leo_video.media.video.VideoReader` objects (anything with
    ``len`` and ``read(indices)``; decoded lazily, so 2048 clips of 128 frames never sit in memory
    together) or frame arrays indexable with a list of indices (uint8 numpy ``(T, H, W, 3)``).
    """
    specs = plan_real_clips([len(v) for v in dataset_videos], num_clips, clip_length, seed, subsample)
    for spec in specs:
        video, indices = dataset_videos[spec.video_index], list(spec.frame_indices)
        yield video.read(indices) if hasattr(video, "read") else video[indices]


def sample_real_clips(
    dataset_videos: Sequence[Any], num_clips: int, clip_length: int, seed: int, subsample: int = 1
) -> list[Any]:
    """All real clips of :func:`iter_real_clips` as a list (small sets; stream large ones)."""
    return list(iter_real_clips(dataset_videos, num_clips, clip_length, seed, subsample))


def real_stats_cache_path(
    cache_dir: str | os.PathLike,
    protocol: FVDProtocol,
    listing: Sequence[Any],
    detector_sha256: str | None = None,
) -> Path:
    """Cache file for real statistics: ``{cache_dir}/real-{name}-{protocol hash}-{listing hash}.npz``.

    ``listing`` describes the real dataset (e.g. ``(relative path, size in bytes, frame count)``
    per video, JSON-serialisable); ``detector_sha256`` pins the detector file. Any change in
    protocol, data or detector gives a different file, so a stale cache is never read.
    """
    blob = json.dumps(
        {"listing": list(listing), "detector_sha256": detector_sha256}, sort_keys=True, default=str
    ).encode()
    data_key = hashlib.sha256(blob).hexdigest()[:16]
    return Path(cache_dir) / f"real-{protocol.name}-{protocol_hash(protocol)}-{data_key}.npz"


def load_or_compute_real_stats(
    cache_path: str | os.PathLike, compute_features: Callable[[], np.ndarray], ddof: int = 0
) -> dict[str, np.ndarray]:
    """Real statistics ``{"mu" (D,), "sigma" (D, D), "features" (N, D), "num_clips" ()}`` from cache,
    or from ``compute_features() -> (N, D)`` and then saved (atomically) to ``cache_path``.

    The features themselves are cached too: KVD needs them, not only mean and covariance.
    """
    from .frechet import as_features, feature_stats

    cache_path = Path(cache_path)
    if cache_path.is_file():
        try:
            with np.load(cache_path, allow_pickle=False) as data:
                return {key: data[key] for key in ("mu", "sigma", "features", "num_clips")}
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{cache_path}: unreadable statistics cache ({exc}); delete it to recompute") from exc
    features = as_features(compute_features(), "real features")  # (N, D)
    mu, sigma = feature_stats(features, ddof=ddof)
    stats = {"mu": mu, "sigma": sigma, "features": features, "num_clips": np.asarray(features.shape[0])}
    with atomic_path(cache_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **stats)
    return stats
