"""`leo-video eval recon`: LIA's self-reenactment L1 over a test split."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import add_animator_arg, add_device_args

PARENT = "eval"
ORDER = 64


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recon",
        help="self-reenactment L1 (on [0, 1]) of a LIA checkpoint over a folder of test videos",
        description=(
            "For every video: the first frame is the source and every frame drives it with its absolute "
            "motion code; L1 on [0, 1] between rendering and frame, averaged over frames, then over videos "
            "(each video weighs the same), as LIA's protocol. Beside it the still baseline (the first frame "
            "repeated) on the same frames: an animator that ignores its driver scores that. Prints one JSON line."
        ),
    )
    add_animator_arg(p)
    p.add_argument("--data", required=True,
                   help="folder of test videos (DATASET/test; a dataset with train/test folders means its test split)")
    p.add_argument("--max-videos", type=int, default=None, help="only the first N videos")
    p.add_argument("--frames", type=int, default=None, help="only the first N frames of each video")
    p.add_argument("--batch-frames", type=int, default=16, help="frames rendered per batch (default 16)")
    add_device_args(p)
    p.set_defaults(func=run)


def reconstruction_error(checkpoint: str | None, data: str, max_videos: int | None = None, frames: int | None = None,
                         batch_frames: int = 16, device: str = "auto", dtype: str = "fp32",
                         progress: bool = True) -> dict[str, Any]:
    """``{"data", "l1", "l1_std", "still_l1", "l1_over_still", "num_videos", "num_frames", "per_video",
    "still_per_video"}`` of ``checkpoint`` on ``data``'s videos (``still``: the first frame repeated).

    ``data`` is a folder of test videos; a dataset folder with ``train``/``test`` split folders means its
    ``test`` split. ``per_video`` maps each video's path to its L1. ``checkpoint``: a LIA checkpoint,
    exported folder or LEO pipeline folder; None is the embedded demo model.
    """
    from pathlib import Path

    import numpy as np

    from ..data.video_dataset import split_folder
    from ..errors import InputError
    from ..media.video import VideoReader
    from ..metrics.evaluate import list_videos
    from ..metrics.recon import self_reenactment_errors
    from ..models.loading import load_lia
    from ..pipelines.leo import animator_path
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import progress as progress_bar

    for option, value in (("--max-videos", max_videos), ("--frames", frames), ("--batch-frames", batch_frames)):
        if value is not None and value < 1:
            raise InputError(f"{option} {value}: must be at least 1")
    folder = split_folder(Path(data), "test")  # DATASET/test when given a dataset with split folders
    paths = list_videos(folder, "--data")[:max_videos]
    animator = load_lia(animator_path(checkpoint), device=resolve_device(device))
    per_video, still_per_video, total = {}, {}, 0
    with progress_bar(len(paths), "eval recon", unit="video") as bar:
        for path in paths:
            with VideoReader(path) as reader:
                errors = self_reenactment_errors(animator, reader, frames, batch_frames, resolve_dtype(dtype))
            per_video[str(path)], still_per_video[str(path)] = errors["l1"], errors["still_l1"]
            total += errors["frames"]
            bar.update(1)
    values, still = np.array(list(per_video.values())), np.array(list(still_per_video.values()))
    return {"data": str(folder), "l1": float(values.mean()), "l1_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "still_l1": float(still.mean()), "l1_over_still": float(values.mean() / still.mean()),
            "num_videos": len(values), "num_frames": total, "per_video": per_video, "still_per_video": still_per_video}


def run(args: argparse.Namespace) -> int:
    result = reconstruction_error(args.checkpoint, args.data, args.max_videos, args.frames, args.batch_frames,
                                  args.device, args.dtype)
    from ..pipelines.leo import animator_path

    print(json.dumps({"metric": "recon_l1", "checkpoint": str(animator_path(args.checkpoint)), **result}))
    return 0
