"""Reconstruction error of the animator (``eval recon``): L1 between reconstructed and real frames.

Inputs are videos in the tensor convention, float in [-1, 1]; the error is measured on the [0, 1]
scale, ``mean |(pred + 1) / 2 - (target + 1) / 2|`` over frames, channels and pixels — the number
LIA and its followers report as "L1" for same-identity reconstruction. (On [0, 1] it is exactly half
the L1 on [-1, 1].)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import InputError
from .frechet import to_numpy

__all__ = ["ReconstructionL1", "errors_by_motion", "reconstruction_l1", "self_reenact", "self_reenactment_errors",
           "self_reenactment_l1"]

SHEET_VIDEOS = 3  # videos shown by ``reconstruction_error(sheet=...)``, three rows each
SHEET_FRAMES = 8  # evenly spaced frames per row
SHEET_LABELS = ("original", "reconstruction", "still")
# A pixel "moved" when its colour differs from the video's first frame by more than this on [0, 1] (mean over the
# channels; ~25 of 255 levels): the pixels an animator must redraw and the still gets wrong (docs/TRAINING.md,
# finding 17: an open mouth is a few hundred of a face frame's 16,384 pixels, invisible in the frame's mean).
MOVED_THRESHOLD = 0.1


@dataclass
class ReconstructionL1:
    """L1 on [0, 1]: ``per_video`` (one float per video) and ``mean`` over videos (equal weights)."""

    per_video: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_video)) if self.per_video else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"l1_mean": self.mean, "l1_per_video": list(self.per_video), "num_videos": len(self.per_video)}


def reconstruction_l1(pred: Any, target: Any) -> ReconstructionL1:
    """Per-video mean absolute error on [0, 1] between ``pred`` and ``target`` in [-1, 1].

    Each is a batch ``(B, T, 3, H, W)``, a single video ``(T, 3, H, W)`` (one video), or a list of
    videos ``(T_v, 3, H, W)`` of possibly different lengths (paired by position). numpy or torch.
    """
    preds, targets = _as_video_list(pred, "pred"), _as_video_list(target, "target")
    if len(preds) != len(targets):
        raise InputError(f"target: {len(targets)} videos, but pred has {len(preds)}")
    result = ReconstructionL1()
    for p, t in zip(preds, targets):
        if p.shape != t.shape:
            raise InputError(f"target: video shape {t.shape} does not match pred's {p.shape}")
        result.per_video.append(float(np.abs(p - t).mean() / 2.0))  # |a - b| / 2 = L1 on [0, 1]
    return result


def self_reenact(animator: Any, frames: Iterable[np.ndarray], batch_frames: int = 16,
                 dtype: Any = None) -> Iterator[tuple[list[np.ndarray], Any]]:
    """LIA's self-reenactment of a frame stream, uint8 ``(H, W, 3)`` each: the first frame is the source and every
    frame (the first too) drives it with its *absolute* code (``AnimateOptions(relative=False)``, as in LIA
    training). Yields ``(driving frames, rendered (n, 3, S, S) in [-1, 1])`` chunks; each frame is decoded once."""
    import itertools

    import torch

    from ..pipelines.animate import AnimateOptions, frames_to_batch, transfer_motion_chunks

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return
    source = frames_to_batch([first], animator.config.size, next(animator.parameters()).device)[0]  # (3, S, S)
    options = AnimateOptions(relative=False, batch_frames=batch_frames, dtype=dtype or torch.float32)
    yield from transfer_motion_chunks(animator, source, itertools.chain([first], frames), options)


def iter_self_reenactment(animator: Any, reader: Any, max_frames: int | None = None, batch_frames: int = 16,
                          dtype: Any = None) -> Iterator[tuple[Any, Any]]:
    """LIA's self-reenactment (:func:`self_reenact`) of the first ``max_frames`` frames of ``reader`` (a
    :class:`leo_video.media.video.VideoReader`) as a stream of ``(rendered, target)`` chunks, each (n, 3, S, S)
    in [-1, 1]; the target is the frame itself, centre-cropped and resized to the model's size."""
    from ..pipelines.animate import frames_to_batch

    device = next(animator.parameters()).device
    total = len(reader) if max_frames is None else min(len(reader), max_frames)
    for driving, result in self_reenact(animator, reader.iter_frames(stop=total), batch_frames, dtype):
        yield result, frames_to_batch(driving, animator.config.size, device)  # (n, 3, S, S) each


def self_reenactment_l1(animator: Any, reader: Any, max_frames: int | None = None, batch_frames: int = 16,
                        dtype: Any = None) -> tuple[float, int]:
    """LIA's self-reenactment error of one video: ``(L1 on [0, 1], frames)`` (see :func:`iter_self_reenactment`).

    The L1 is the mean over frames, channels and pixels.
    """
    errors = self_reenactment_errors(animator, reader, max_frames, batch_frames, dtype)
    return errors["l1"], errors["frames"]


def self_reenactment_errors(animator: Any, reader: Any, max_frames: int | None = None, batch_frames: int = 16,
                            dtype: Any = None, on_chunk: Any = None, shuffled: bool = False,
                            seed: int = 0) -> dict[str, Any]:
    """``{"l1", "still_l1", "frames", "frame_l1", "frame_still_l1", "moved"}`` of one video: the animator's
    self-reenactment L1 on [0, 1] and that of the still baseline (the source frame repeated) on the same frames,
    over the video and frame by frame (lists); with ``shuffled``, ``"shuffled_l1"`` too. ``moved``: ``(pixels,
    l1_sum, still_l1_sum)`` over the pixels that moved (:data:`MOVED_THRESHOLD`), sums to pool across videos.

    The still baseline is what an animator that ignores the driver scores: an L1 is only meaningful below
    it. The shuffled-codes baseline renders every frame with the code of a frame drawn by a fixed random
    permutation (``seed``) of the same video: an animator whose codes say "some pose of this video" but not
    which one scores about as well as its reconstruction there (a second pass: the frames are decoded twice).
    All are means over frames, channels and pixels. ``on_chunk(result, target)``, if given, sees every chunk
    of renderings and frames (n, 3, S, S) of the first pass.
    """
    import torch

    from ..utils.device import autocast

    count, source, codes, frame_l1, frame_still_l1, moved = 0, None, [], [], [], [0, 0.0, 0.0]
    for result, target in iter_self_reenactment(animator, reader, max_frames, batch_frames, dtype):
        if on_chunk is not None:
            on_chunk(result, target)
        source = target[:1] if source is None else source  # (1, 3, S, S): frame 0, as the animator saw it
        error, still_error = (result - target).abs() / 2, (source - target).abs() / 2  # on [0, 1]: |a - b| / 2
        frame_l1 += error.flatten(1).mean(1).tolist()
        frame_still_l1 += still_error.flatten(1).mean(1).tolist()
        pixel_error, pixel_still_error = error.mean(1), still_error.mean(1)  # (n, S, S): over the channels
        mask = pixel_still_error > MOVED_THRESHOLD  # the pixels that moved
        moved[0] += int(mask.sum())
        moved[1] += float(pixel_error[mask].sum())
        moved[2] += float(pixel_still_error[mask].sum())
        count += target.numel()
        if shuffled:
            with torch.no_grad(), autocast(target.device, dtype or torch.float32):
                codes.append(animator.encode_motion(target).float())  # (n, M): the codes the renderer was driven by
    count, frames = max(count, 1), len(frame_l1)
    # every frame has the same size: the mean of the frames' means is the mean over the video
    errors = {"l1": float(np.mean(frame_l1)) if frames else 0.0,
              "still_l1": float(np.mean(frame_still_l1)) if frames else 0.0, "frames": frames,
              "frame_l1": frame_l1, "frame_still_l1": frame_still_l1, "moved": tuple(moved)}
    if shuffled and frames:
        errors["shuffled_l1"] = _shuffled_codes_l1(animator, reader, source, torch.cat(codes), batch_frames, dtype,
                                                   seed) / count
    return errors


def _shuffled_codes_l1(animator: Any, reader: Any, source: Any, codes: Any, batch_frames: int, dtype: Any,
                       seed: int) -> float:
    """Summed L1 on [0, 1] of the first ``len(codes)`` frames of ``reader`` against renderings of ``source``
    (1, 3, S, S) driven by ``codes`` (T, M) permuted with ``seed`` (absolute codes, as the reconstruction)."""
    import torch

    from ..pipelines.animate import batched, frames_to_batch
    from ..utils.device import autocast

    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(codes))).to(codes.device)
    total, start = 0.0, 0
    with torch.no_grad(), autocast(source.device, dtype or torch.float32):
        appearance = animator.encode_appearance(source)
        for chunk in batched(reader.iter_frames(stop=len(codes)), batch_frames):
            target = frames_to_batch(chunk, animator.config.size, source.device)  # (n, 3, S, S)
            rendered = animator.render(appearance, codes[order[start : start + len(chunk)]]).float()
            total += ((rendered - target).abs() / 2).sum().item()
            start += len(chunk)
    return total


def _as_video_list(x: Any, name: str) -> list[np.ndarray]:
    if isinstance(x, (list, tuple)):
        videos = [to_numpy(v, np.float64) for v in x]
    else:
        array = to_numpy(x, np.float64)
        videos = [array] if array.ndim == 4 else list(array) if array.ndim == 5 else None
        if videos is None:
            raise InputError(f"{name}: expected (B, T, 3, H, W) or (T, 3, H, W), got shape {array.shape}")
    for v in videos:
        if v.ndim != 4 or v.shape[1] != 3:
            raise InputError(f"{name}: each video must be (T, 3, H, W) in [-1, 1], got shape {v.shape}")
        if not np.isfinite(v).all():
            raise InputError(f"{name}: NaN or inf in a video")
    return videos


def reconstruction_error(checkpoint: str | None, data: str, max_videos: int | None = None, frames: int | None = None,
                         batch_frames: int = 16, device: str = "auto", dtype: str = "fp32",
                         progress: bool = True, animator: Any = None, shuffled: bool = True,
                         by_motion: bool = False, sheet: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"data", "l1", "l1_std", "still_l1", "l1_over_still", "num_videos", "num_frames", "per_video",
    "still_per_video"}`` of ``checkpoint`` on ``data``'s videos (``still``: the first frame repeated); with
    ``shuffled``, also ``"shuffled_l1", "l1_over_shuffled", "shuffled_per_video"`` (each video driven by its own
    codes in a fixed random order, see :func:`self_reenactment_errors`; it doubles the rendering work).

    ``data`` is a folder of test videos; a dataset folder with ``train``/``test`` split folders means its
    ``test`` split. ``per_video`` maps each video's path to its L1. ``checkpoint``: a LIA checkpoint,
    exported folder or LEO pipeline folder; None is the embedded demo model. ``animator``: an animator already
    loaded from ``checkpoint`` (``eval all`` shares one with its reconstruction FVD), else it is loaded here.
    ``by_motion``: also ``"by_motion"`` (:func:`errors_by_motion` of all frames) and ``"source_l1"`` (the mean over
    videos of frame 0's error: the source rendered from its own code, the animator's floor, where the still
    scores 0). Always: ``"moved_l1"`` and ``"moved_still_l1"``, the L1 over the pixels that moved
    (:data:`MOVED_THRESHOLD`) of all videos' frames pooled, ``"moved_l1_over_still"`` (about 1: what moved is not
    drawn, whatever the floor; 0: drawn exactly) and ``"moved_share"`` (those pixels' share of all). ``sheet``: a
    labelled contact sheet PNG of the first :data:`SHEET_VIDEOS` videos, rows original, reconstruction and still,
    :data:`SHEET_FRAMES` evenly spaced frames each, written atomically.
    """
    from pathlib import Path

    from ..data.video_dataset import split_folder
    from ..media.grid import save_contact_sheet
    from ..media.video import VideoReader
    from ..models.loading import load_lia
    from ..pipelines.leo import animator_path
    from ..utils.device import resolve_device, resolve_dtype
    from ..utils.progress import progress_bar
    from .evaluate import list_videos

    for option, value in (("--max-videos", max_videos), ("--frames", frames), ("--batch-frames", batch_frames)):
        if value is not None and value < 1:
            raise InputError(f"{option} {value}: must be at least 1")
    folder = split_folder(Path(data), "test")  # DATASET/test when given a dataset with split folders
    paths = list_videos(folder, "--data")[:max_videos]
    if animator is None:
        animator = load_lia(animator_path(checkpoint), device=resolve_device(device))
    per_video, still_per_video, shuffled_per_video, total = {}, {}, {}, 0
    frame_l1, frame_still_l1, source_l1, shown, moved = [], [], [], [], np.zeros(3)
    with progress_bar(len(paths), "eval recon", unit="video", show=progress) as bar:
        for index, path in enumerate(paths):
            with VideoReader(path) as reader:
                length = len(reader) if frames is None else min(len(reader), frames)
                rows = _SheetRows(length) if sheet is not None and index < SHEET_VIDEOS else None
                errors = self_reenactment_errors(animator, reader, frames, batch_frames, resolve_dtype(dtype),
                                                 shuffled=shuffled, on_chunk=rows)
            if rows is not None:
                shown += rows.videos()
            per_video[str(path)], still_per_video[str(path)] = errors["l1"], errors["still_l1"]
            frame_l1 += errors["frame_l1"]
            frame_still_l1 += errors["frame_still_l1"]
            source_l1 += errors["frame_l1"][:1]
            moved += errors["moved"]
            if shuffled:
                shuffled_per_video[str(path)] = errors["shuffled_l1"]
            total += errors["frames"]
            bar.update(1)
    values, still = np.array(list(per_video.values())), np.array(list(still_per_video.values()))
    result = {"data": str(folder), "l1": float(values.mean()),
              "l1_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
              "still_l1": float(still.mean()),  # videos that never move: no ratio to the still
              "l1_over_still": float(values.mean() / still.mean()) if still.mean() > 0 else float("nan")}
    pixels, moved_l1, moved_still = moved
    result.update(moved_l1=moved_l1 / pixels if pixels else float("nan"),
                  moved_still_l1=moved_still / pixels if pixels else float("nan"),
                  moved_l1_over_still=moved_l1 / moved_still if pixels else float("nan"),
                  moved_share=pixels / (total * animator.config.size ** 2) if total else 0.0)
    if shuffled:
        mean_shuffled = float(np.mean(list(shuffled_per_video.values())))
        result.update(shuffled_l1=mean_shuffled, l1_over_shuffled=float(values.mean()) / mean_shuffled)
    if by_motion:
        result.update(source_l1=float(np.mean(source_l1)), by_motion=errors_by_motion(frame_l1, frame_still_l1))
    result.update(num_videos=len(values), num_frames=total, per_video=per_video, still_per_video=still_per_video)
    if shuffled:
        result["shuffled_per_video"] = shuffled_per_video
    if sheet is not None:
        labels = [f"{Path(p).name} {label}" if label == SHEET_LABELS[0] else label
                  for p in paths[:SHEET_VIDEOS] for label in SHEET_LABELS]
        save_contact_sheet(sheet, shown, num_frames=SHEET_FRAMES, labels=labels)
    return result


class _SheetRows:
    """An ``on_chunk`` hook of :func:`self_reenactment_errors` that keeps :data:`SHEET_FRAMES` evenly spaced frames
    of a ``length``-frame video: the originals, their reconstructions and the still (frame 0), (n, 3, S, S) each."""

    def __init__(self, length: int):
        from ..media.grid import sample_frame_indices

        self.wanted = set(sample_frame_indices(length, SHEET_FRAMES))
        self.seen, self.original, self.reconstruction = 0, [], []

    def __call__(self, result: Any, target: Any) -> None:
        for i in range(len(target)):
            if self.seen + i in self.wanted:
                self.original.append(target[i].float().cpu())
                self.reconstruction.append(result[i].float().cpu())
        self.seen += len(target)

    def videos(self) -> list[Any]:
        import torch

        original = torch.stack(self.original)  # frame 0 is always among the wanted ones
        return [original, torch.stack(self.reconstruction), original[:1].expand_as(original)]


def errors_by_motion(frame_l1: list[float], frame_still_l1: list[float], bins: int = 4) -> list[dict[str, float]]:
    """Frames pooled over videos and split into ``bins`` equal-count groups by the still baseline's error (how far
    each frame is from its video's first frame): per group ``{"still_from", "still_to", "frames", "l1",
    "still_l1", "l1_over_still"}``, least motion first. An animator that follows motion but renders blurrily loses
    to the still on the first group (frames like the source) and wins on the last; one that ignores its driver
    scores about the still everywhere."""
    rec, still = np.asarray(frame_l1, dtype=np.float64), np.asarray(frame_still_l1, dtype=np.float64)
    if len(rec) == 0:
        return []
    order = np.argsort(still, kind="stable")
    groups = []
    for part in np.array_split(order, min(bins, len(order))):
        l1, still_l1 = float(rec[part].mean()), float(still[part].mean())
        groups.append({"still_from": float(still[part].min()), "still_to": float(still[part].max()),
                       "frames": int(len(part)), "l1": l1, "still_l1": still_l1,
                       "l1_over_still": l1 / still_l1 if still_l1 > 0 else float("nan")})
    return groups


def reconstruct_video(animator: Any, video: str | os.PathLike, out: str | os.PathLike | None = None,
                      max_frames: int | None = None, batch_frames: int = 16, dtype: Any = None,
                      model: str = "animator") -> dict[str, Any]:
    """Self-reenactment of one video: ``{"video", "frames", "l1", "still_l1"}`` (L1 on [0, 1] of the rendering and,
    beside it, of the first frame repeated), and ``original | reconstruction`` written to ``out`` when given.

    NaN or inf in a rendering stops with a NumericalError naming ``model``; nothing is written.
    """
    import contextlib

    import torch

    from ..errors import NumericalError
    from ..media.grid import make_grid
    from ..media.video import VideoReader, VideoWriter
    from ..utils.progress import progress_bar

    def check_and_write(result: torch.Tensor, target: torch.Tensor) -> None:
        if not torch.isfinite(result).all():
            raise NumericalError(f"{model}: rendered frames contain NaN or inf (check the weights)")
        if sink is not None:
            sink.write(make_grid([target.cpu(), result.cpu()], ncols=2))
        bar.update(len(result))

    with VideoReader(video) as reader:
        total = len(reader) if max_frames is None else min(len(reader), max_frames)
        writer = VideoWriter(out, fps=reader.info.fps) if out else contextlib.nullcontext()
        with writer as sink, progress_bar(total, "reconstruct") as bar:
            errors = self_reenactment_errors(animator, reader, total, batch_frames, dtype or torch.float32,
                                             on_chunk=check_and_write)
    return {"video": str(video), "frames": total, "l1": errors["l1"], "still_l1": errors["still_l1"]}
