"""Measuring folders of videos: the glue between files on disk and the metric functions.

The ``leo-video eval …`` commands are thin wrappers over these functions:

* :func:`list_videos` — the videos of a folder (files and frame folders), or a one-line InputError;
* :func:`real_clip_features` — I3D features of the real clips of the FVD protocol
  (:mod:`.protocol`: one clip per video at a seeded random offset), cached by protocol hash;
* :func:`generated_clips_from_folder` and :func:`generated_clip_features` — the generated side.
  **Hook for on-the-fly generation**: :func:`generated_clip_features` takes *any iterable of
  generated videos* (uint8 ``(T, H, W, 3)`` or float ``(T, 3, H, W)`` in [-1, 1]); a
  ``--pipeline PIPE`` option only has to pass an iterator of LEO samples instead of
  :func:`generated_clips_from_folder`'s videos;
* :func:`video_distances` — FVD and KVD of two feature sets under a protocol, with sample counts;
* :func:`folder_acd` — ACD of a folder's videos; :func:`load_code_sequences` — motion codes.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import InputError
from .frechet import feature_stats, frechet_distance_from_stats, kernel_distance
from .protocol import PROTOCOLS, FVDProtocol, iter_real_clips, load_or_compute_real_stats, protocol_hash, real_stats_cache_path

__all__ = [
    "GeneratedClips",
    "RealFeatures",
    "folder_acd",
    "generated_clip_features",
    "generated_clips_from_folder",
    "list_videos",
    "load_code_sequences",
    "make_protocol",
    "protocol_clip",
    "real_clip_features",
    "video_distances",
]


def list_videos(folder: str | os.PathLike, what: str = "folder") -> list[Path]:
    """Video files and frame folders under ``folder`` (recursive, natural order); ``what`` names the option.

    Raises InputError (naming the option and folder) when it is missing, not a folder, or holds no video.
    """
    from ..data.video_dataset import find_videos

    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{what} {folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{what} {folder}: not a folder (pass a folder of videos)")
    videos = find_videos(folder)
    if not videos:
        raise InputError(f"{what} {folder}: no videos found (mp4/gif/... files or folders of png/jpg frames)")
    return videos


def make_protocol(
    name: str = "fvd16",
    num_videos: int | None = None,
    num_frames: int | None = None,
    subsample: int | None = None,
    seed: int | None = None,
    resolution: int | None = None,
    detector: str | None = None,
) -> FVDProtocol:
    """A preset of :data:`PROTOCOLS` with the given fields replaced (None keeps the preset's value)."""
    if name not in PROTOCOLS:
        raise InputError(f"--protocol {name}: choose one of {', '.join(PROTOCOLS)}")
    changes = {"num_videos": num_videos, "num_frames": num_frames, "subsample": subsample,
               "seed": seed, "resolution": resolution, "detector": detector}
    return dataclasses.replace(PROTOCOLS[name], **{k: v for k, v in changes.items() if v is not None})


@dataclass
class RealFeatures:
    """Real-clip features ``(N, D)`` with where they came from (for reports)."""

    features: np.ndarray
    num_videos: int  # videos in the folder
    num_eligible: int  # videos at least one clip span long
    cache_path: str | None = None
    from_cache: bool = False


def protocol_clip(clip: Any, protocol: FVDProtocol) -> np.ndarray:
    """Any clip as the detector gets it: uint8 ``(T, H, W, 3)``, at ``protocol.resolution`` if set.

    A float clip ``(T, 3, H, W)`` in [-1, 1] (a pipeline's output) is quantised as if saved
    (:func:`leo_video.media.image.to_uint8`). Real and generated clips both pass here, so they are
    resized by the same code (:func:`leo_video.metrics.resize.clip_at_resolution`), and the detector
    then brings both to 224x224 the same way.
    """
    import torch

    if isinstance(clip, torch.Tensor) and clip.is_floating_point():
        from ..media.image import to_uint8

        clip = to_uint8(clip.cpu()).permute(0, 2, 3, 1).numpy()  # (T, H, W, 3)
    clip = np.asarray(clip)
    if protocol.resolution is None:
        return clip
    from .resize import clip_at_resolution

    return clip_at_resolution(clip, protocol.resolution)  # (T, R, R, 3)


def _same_shape(clips: Iterable[Any], what: str) -> Iterator[Any]:
    """Pass clips through, refusing a clip whose shape differs from the first one's (I3D batches them)."""
    first = None
    for index, clip in enumerate(clips):
        shape = tuple(np.shape(clip))
        if first is None:
            first = shape
        elif shape != first:
            raise InputError(
                f"{what}: clip {index} has shape {shape} but the first has {first}; pass --resolution to resize all"
            )
        yield clip


def real_clip_features(
    detector: Callable[..., Any],
    real_dir: str | os.PathLike,
    protocol: FVDProtocol,
    cache_dir: str | os.PathLike | None = None,
    detector_sha256: str | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> RealFeatures:
    """I3D features ``(N, 400)`` of the protocol's real clips of the videos in ``real_dir``.

    Clips follow :func:`leo_video.metrics.protocol.plan_real_clips` (one per video, seeded offset,
    short videos dropped). With ``cache_dir`` the features are read from / written to
    :func:`real_stats_cache_path` (keyed by protocol hash, the listing — relative path, bytes and
    frame count of each video — and the detector's sha256).
    """
    from ..media.video import VideoReader
    from .i3d import i3d_features_of_clips

    root = Path(real_dir)
    paths = list_videos(root, "--real")
    readers = [VideoReader(p) for p in paths]  # indexed (demuxed), not decoded; frames as stored
    lengths = [len(r) for r in readers]
    eligible = sum(length >= protocol.span for length in lengths)
    if eligible == 0:
        raise InputError(f"--real {root}: no video has the {protocol.span} frames a clip spans (longest: {max(lengths)})")
    num = min(eligible, protocol.num_videos)

    def compute() -> np.ndarray:
        clips = iter_real_clips(readers, protocol.num_videos, protocol.num_frames, protocol.seed, protocol.subsample)
        clips = (protocol_clip(clip, protocol) for clip in clips)
        return i3d_features_of_clips(detector, _same_shape(clips, f"--real {root}"), batch_size, num, progress)

    if cache_dir is None:
        return RealFeatures(compute(), len(paths), eligible)
    listing = [(str(p.relative_to(root)), _size_of(p), n) for p, n in zip(paths, lengths)]
    cache = real_stats_cache_path(cache_dir, protocol, listing, detector_sha256)
    hit = cache.is_file()
    stats = load_or_compute_real_stats(cache, compute, ddof=protocol.ddof)
    return RealFeatures(np.asarray(stats["features"]), len(paths), eligible, str(cache), hit)


def _size_of(path: Path) -> int:
    """Bytes of a video file, or of all files of a frame folder."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.iterdir() if p.is_file())


@dataclass
class GeneratedClips:
    """The generated videos of a folder, as an iterable of uint8 videos ``(T, H, W, 3)``.

    Each video gives the frames of its first clip only (``0, subsample, …``, ``num_frames`` of them, as
    stored: :func:`generated_clip_features` applies ``protocol.resolution``); after iteration ``skipped`` lists the videos shorter than a clip span.
    """

    paths: list[Path]
    protocol: FVDProtocol
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        from ..media.video import VideoReader

        p = self.protocol
        for path in self.paths:  # opened one at a time: only the videos actually measured are indexed
            with VideoReader(path) as reader:
                if len(reader) < p.span:
                    self.skipped.append(str(path))
                    continue
                yield reader.read(range(0, p.span, p.subsample))  # (num_frames, H, W, 3)


def generated_clips_from_folder(fake_dir: str | os.PathLike, protocol: FVDProtocol) -> GeneratedClips:
    """The generated videos of ``fake_dir`` (see :class:`GeneratedClips`); InputError if it holds none."""
    return GeneratedClips(list_videos(fake_dir, "--fake"), protocol)


def generated_clip_features(
    detector: Callable[..., Any],
    videos: Iterable[Any],
    protocol: FVDProtocol,
    batch_size: int = 16,
    progress: bool = True,
    what: str = "--fake",
) -> np.ndarray:
    """I3D features ``(N, 400)`` of up to ``protocol.num_videos`` generated videos — THE generated-clip hook.

    ``videos`` is any iterable of generated videos: uint8 ``(T, H, W, 3)`` (files) or float
    ``(T, 3, H, W)`` in [-1, 1] (a pipeline's output, quantised as if saved; see
    :func:`leo_video.metrics.i3d.videos_to_i3d_input`). Each gives one clip, frames
    ``0, subsample, …`` (``num_frames`` of them); videos already that short pass unchanged. Each clip
    then goes through :func:`protocol_clip`, as the real ones do.
    """
    from .i3d import i3d_features_of_clips

    def clips() -> Iterator[Any]:
        for count, video in enumerate(videos):
            if count == protocol.num_videos:
                return
            if len(video) < protocol.span and len(video) != protocol.num_frames:
                raise InputError(f"{what}: a generated video has {len(video)} frames, fewer than the {protocol.span} a clip spans")
            clip = video if len(video) == protocol.num_frames else video[0 : protocol.span : protocol.subsample]
            yield protocol_clip(clip, protocol)

    total = min(protocol.num_videos, len(videos)) if hasattr(videos, "__len__") else protocol.num_videos
    feats = i3d_features_of_clips(detector, _same_shape(clips(), what), batch_size, total, progress, allow_empty=True)
    if len(feats) == 0:
        raise InputError(f"{what}: no generated video has the {protocol.span} frames a clip spans")
    return feats


def video_distances(real: Any, fake: Any, protocol: FVDProtocol, which: Sequence[str] = ("fvd", "kvd")) -> dict[str, Any]:
    """FVD and/or KVD (``which``) of real ``(N_r, D)`` and generated ``(N_g, D)`` features under ``protocol``.

    FVD uses the protocol's covariance normalisation (``ddof``); KVD is :func:`kernel_distance`.
    Returns ``{"fvd"?, "kvd"?, "num_real", "num_fake", "protocol", "protocol_hash"}``.
    """
    from .frechet import as_features

    real, fake = as_features(real, "real features"), as_features(fake, "fake features")
    out: dict[str, Any] = {}
    if "fvd" in which:  # sqrtm of a 400 x 400 matrix: seconds on a small CPU, so only when asked
        out["fvd"] = frechet_distance_from_stats(*feature_stats(real, protocol.ddof), *feature_stats(fake, protocol.ddof))
    if "kvd" in which:
        out["kvd"] = kernel_distance(real, fake)
    return {**out, "num_real": int(real.shape[0]), "num_fake": int(fake.shape[0]),
            "protocol": protocol.to_dict(), "protocol_hash": protocol_hash(protocol)}


def folder_acd(
    folder: str | os.PathLike,
    embedder: Callable[[Any], Any] | None = None,
    max_videos: int | None = None,
    max_frames: int | None = None,
    resolution: int | None = None,
    what: str = "--videos",
    progress: bool = True,
) -> dict[str, Any]:
    """ACD of the videos in ``folder``: mean-colour (``embedder=None``) or a frame embedder.

    Each video contributes its first ``max_frames`` frames (all if None). Returns
    ``{"acd", "acd_per_video", "num_videos", "num_frames"}`` (num_frames: total frames embedded).
    """
    from ..media.image import numpy_to_frames
    from .acd import mean_colour_embedding, mean_pairwise_distance, video_embeddings

    from tqdm.auto import tqdm

    from ..media.video import VideoReader

    paths = list_videos(folder, what)[:max_videos]
    per_video, frames_used = [], 0
    for path in tqdm(paths, desc="ACD", unit="video", disable=not progress):
        with VideoReader(path, size=resolution) as reader:
            frames = np.stack(list(reader.iter_frames(stop=max_frames)))  # (T, H, W, 3) uint8
        if len(frames) < 2:
            raise InputError(f"{path}: ACD needs at least 2 frames, got {len(frames)}")
        e = mean_colour_embedding(frames) if embedder is None else video_embeddings(numpy_to_frames(frames), embedder)
        per_video.append(mean_pairwise_distance(e))  # ACD of this video
        frames_used += len(frames)
    return {"acd": float(np.mean(per_video)), "acd_per_video": per_video, "num_videos": len(paths), "num_frames": frames_used}


def load_code_sequences(path: str | os.PathLike, what: str = "codes") -> list[np.ndarray]:
    """Motion-code sequences ``[(T, M)]`` from a motion-code store folder, a ``.safetensors`` or a ``.pt`` file.

    Files hold one tensor ``(N, T, M)`` or ``(T, M)`` or a dict of such tensors (``.pt`` read with
    ``weights_only=True``). A store folder is read with :class:`leo_video.data.motion_codes.MotionCodeStore`.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: no such file or folder")
    if path.is_dir():
        from ..data.motion_codes import MotionCodeStore

        tensors = [codes for _, codes in MotionCodeStore(path).items()]
    elif path.suffix == ".safetensors":
        from ..utils.serialization import read_safetensors

        tensors = list(read_safetensors(path).values())
    elif path.suffix in (".pt", ".pth"):
        from ..utils.serialization import safe_torch_load

        obj = safe_torch_load(path, map_location="cpu")
        tensors = list(obj.values()) if isinstance(obj, dict) else [obj]
    else:
        raise InputError(f"{what} {path}: expected a motion-code store folder, .safetensors or .pt file")
    sequences = []
    for t in tensors:
        a = np.asarray(t.detach().cpu().double().numpy() if hasattr(t, "detach") else t, dtype=np.float64)
        if a.ndim not in (2, 3):
            raise InputError(f"{what} {path}: code tensors must be (N, T, M) or (T, M), got shape {a.shape}")
        sequences += list(a) if a.ndim == 3 else [a]
    if not sequences:
        raise InputError(f"{what} {path}: holds no code sequences")
    return sequences
