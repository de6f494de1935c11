"""`leo-video reconstruct`: self-reenactment from the first frame (LIA's evaluation protocol)."""

from __future__ import annotations

import argparse

from ._common import add_animator_arg, add_device_args, add_overwrite_arg, progress

ORDER = 21


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reconstruct",
        help="re-render a video from its first frame with its own motion; prints the L1 error",
        description=(
            "Self-reenactment: the first frame is the source, every frame of the same video drives it "
            "(absolute codes, as in LIA training and evaluation). Prints the mean L1 between "
            "reconstruction and original on [0, 1], and beside it the still baseline (the first frame repeated): "
            "an L1 above still_l1 means the animator does worse than not moving."
        ),
    )
    add_animator_arg(p)
    p.add_argument("--video", required=True, help="video or frame folder")
    p.add_argument("--out", default=None, help="optional output video: original | reconstruction")
    p.add_argument("--batch-frames", type=int, default=16, help="frames encoded and rendered per batch (default 16)")
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames (default: all)")
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import contextlib
    import json

    import torch

    from ..errors import NumericalError
    from ..media.grid import make_grid
    from ..media.video import VideoReader, VideoWriter
    from ..metrics.recon import iter_self_reenactment
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import check_video_output, load_animator, model_name

    out = check_video_output(args.out, args.overwrite) if args.out else None
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    animator = load_animator(args.checkpoint, device)
    reader = VideoReader(args.video)
    total = len(reader) if args.max_frames is None else min(len(reader), args.max_frames)
    abs_error, still_error, count, source = 0.0, 0.0, 0, None
    writer = VideoWriter(out, fps=reader.info.fps) if out else contextlib.nullcontext()
    with writer as sink, progress(total, "reconstruct") as bar:
        for result, target in iter_self_reenactment(animator, reader, total, args.batch_frames, dtype):
            if not torch.isfinite(result).all():
                raise NumericalError(f"{model_name(args.checkpoint)}: rendered frames contain NaN or inf (check the weights)")
            source = target[:1] if source is None else source  # the first frame: the still baseline
            abs_error += ((result - target).abs() / 2).sum().item()  # L1 on [0, 1]
            still_error += ((source - target).abs() / 2).sum().item()
            count += target.numel()
            if sink is not None:
                sink.write(make_grid([target.cpu(), result.cpu()], ncols=2))
            bar.update(len(result))
    count = max(count, 1)
    print(json.dumps({"video": str(args.video), "frames": total, "l1": abs_error / count,
                      "still_l1": still_error / count}))  # fmt: skip
    return 0
