"""Motion codes of whole videos: the frozen LIA encoder run over a dataset (LEO_METHOD.md, "Stage 2").

Frames are decoded as a stream and encoded in batches, so memory does not depend on a video's
length. With several processes (``accelerate launch`` / ``torchrun``) each rank encodes every
``world_size``-th video into its own store folder ``OUT/rank-K`` — no two processes write one index
— and the main process merges them into ``OUT`` at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..data.video_dataset import SPLITS, find_videos, split_folder
from ..media.video import VideoReader
from ..utils.device import autocast
from .animate import batched, frames_to_batch


@dataclass(frozen=True)
class VideoToEncode:
    """One dataset video: its store name (path relative to the dataset root), file and split."""

    name: str
    path: Path
    split: str | None


def list_dataset_videos(root: Path) -> list[VideoToEncode]:
    """Every video of a dataset folder; with ``train/``/``test/`` folders, each tagged by its split."""
    if any((root / s).is_dir() for s in SPLITS):
        pairs = [(s, split_folder(root, s)) for s in SPLITS if (root / s).is_dir()]
    else:
        pairs = [(None, root)]
    return [
        VideoToEncode(str(path.relative_to(root)), path, split)
        for split, folder in pairs
        for path in find_videos(folder)
    ]


@torch.no_grad()
def encode_video(
    animator, reader: VideoReader, batch_frames: int = 32, frame_stride: int = 1,
    dtype: torch.dtype = torch.float32,
) -> Iterator[torch.Tensor]:
    """Yield the motion codes of every ``frame_stride``-th frame in chunks of (n, M), float32, CPU."""
    device = next(animator.parameters()).device
    size = animator.config.size
    for chunk in batched(reader.iter_frames(step=frame_stride), batch_frames):
        with autocast(device, dtype):
            codes = animator.encode_motion(frames_to_batch(chunk, size, device))  # (n, M)
        yield codes.float().cpu()


# Frames per encoder call by device type. On CPUs one frame at a time is fastest: measured on a 2-core EPYC,
# batch 64 ran at 0.59x the frames/s of batch 1 at 128² and batch 16 at 0.55x at 256² (the activations of a
# batch leave the caches; benchmarks/encode_motion.py, benchmarks/RESULTS.md). GPUs want large batches.
DEFAULT_BATCH_FRAMES = {"cuda": 64, "cpu": 1}


@dataclass
class EncodeOptions:
    """``encode_dataset``'s job: every video of the dataset folder ``data`` into the motion-code store ``out``
    (resumed when it exists), encoding every ``frame_stride``-th frame ``batch_frames`` at a time with the animator
    ``checkpoint`` (None: the demo model's), ``shard_size`` videos per safetensors shard. ``batch_frames`` None:
    :data:`DEFAULT_BATCH_FRAMES` for the device."""

    data: str | os.PathLike
    out: str | os.PathLike
    checkpoint: str | os.PathLike | None = None
    frame_stride: int = 1
    batch_frames: int | None = None
    shard_size: int = 64
    device: str = "auto"
    dtype: str = "fp32"


def encode_dataset(options: EncodeOptions, warn: Callable[[str], None] = lambda text: None) -> dict | None:
    """Encode a dataset into a motion-code store; on several processes each takes every N-th video and the main
    one merges. Returns the store's summary on the main process (None on the others); a video that cannot be
    read is skipped with ``warn``; a dataset of which none could be encoded is an InputError."""
    import shutil

    from accelerate import PartialState

    from ..data.motion_codes import MotionCodeStore, MotionCodeWriter, sha256_checkpoint
    from ..errors import InputError, LeoError
    from ..models.loading import load_lia
    from ..utils.device import resolve_device, resolve_dtype
    from ..utils.progress import progress_bar
    from .leo import animator_path

    if options.frame_stride < 1 or (options.batch_frames is not None and options.batch_frames < 1):
        raise InputError("--frame-stride and --batch-frames must be at least 1")
    root, out = Path(options.data), Path(options.out)
    if not root.is_dir():
        raise InputError(f"{root}: no such dataset folder")
    videos = list_dataset_videos(root)
    if not videos:
        raise InputError(f"{root}: no videos or frame folders found")
    fresh = not out.exists()  # an empty store left by a run that encoded nothing is removed again
    state = PartialState(cpu=options.device == "cpu")
    device = state.device if state.num_processes > 1 else resolve_device(options.device)
    dtype = resolve_dtype(options.dtype)
    checkpoint = animator_path(options.checkpoint)  # a pipeline folder's animator/, the demo model's by default
    animator = load_lia(checkpoint, device=device)
    batch_frames = options.batch_frames or DEFAULT_BATCH_FRAMES.get(torch.device(device).type, 64)
    sha = sha256_checkpoint(checkpoint)  # a file's hash, or an exported folder's (its files')
    rank_out = out if state.num_processes == 1 else out / f"rank-{state.process_index}"
    done = set(MotionCodeStore(out).names) if (out / "index.json").exists() else set()
    mine = [v for v in videos[state.process_index :: state.num_processes] if v.name not in done]
    skipped = 0
    with MotionCodeWriter(rank_out, options.shard_size, checkpoint_sha256=sha) as writer, progress_bar(
        len(mine), "encode-motion", unit="video"
    ) as bar:
        for video in mine:
            bar.update(1)
            if video.name in writer:  # resumed: already stored
                continue
            try:
                reader = VideoReader(video.path)
                codes = torch.cat(list(encode_video(animator, reader, batch_frames, options.frame_stride, dtype)))
            except LeoError as exc:  # one bad file never stops a dataset-wide job
                warn(f"skipped {exc}")
                skipped += 1
                continue
            indices = range(0, len(reader), options.frame_stride)
            writer.add(video.name, codes, {"source": str(video.path), "fps": reader.info.fps,
                                           "frame_indices": list(indices)[: len(codes)], "split": video.split})
    state.wait_for_everyone()
    if state.is_main_process and state.num_processes > 1:
        _merge_rank_stores(out, state.num_processes, options.shard_size, sha)
        for k in range(state.num_processes):
            shutil.rmtree(out / f"rank-{k}", ignore_errors=True)
    if not state.is_main_process:
        return None
    store = MotionCodeStore(out)
    if len(store) == 0:
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        raise InputError(f"{root}: no video could be encoded ({skipped} skipped, see the warnings above)")
    return {"out": str(out), "videos": len(store), "skipped": skipped, "motion_dim": store.motion_dim,
            "lia_checkpoint_sha256": store.checkpoint_sha256}


def _merge_rank_stores(out, num_processes: int, shard_size: int, sha: str | None) -> None:
    """Copy every rank's store into the main store (videos already there are skipped)."""
    from ..data.motion_codes import MotionCodeStore, MotionCodeWriter

    out = Path(out)
    with MotionCodeWriter(out, shard_size, checkpoint_sha256=sha) as merged:
        for k in range(num_processes):
            part = out / f"rank-{k}"
            if not (part / "index.json").exists():
                continue
            store = MotionCodeStore(part)
            for name, codes in store.items():
                meta = {key: value for key, value in store.info(name).items()
                        if key not in ("name", "shard", "key", "num_frames", "motion_dim")}
                merged.add(name, codes, meta)
