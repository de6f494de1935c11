"""`leo-video reconstruct`: self-reenactment from the first frame (LIA's evaluation protocol)."""

from __future__ import annotations

import argparse

from ._common import add_device_args, add_overwrite_arg, progress

ORDER = 21


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reconstruct",
        help="re-render a video from its first frame with its own motion; prints the L1 error",
        description=(
            "Self-reenactment: the first frame is the source, every frame of the same video drives it "
            "(absolute codes, as in LIA training and evaluation). Prints the mean L1 between "
            "reconstruction and original on [0, 1]."
        ),
    )
    p.add_argument("--checkpoint", required=True, help="LIA checkpoint (.pt) or exported folder")
    p.add_argument("--video", required=True, help="video or frame folder")
    p.add_argument("--out", default=None, help="optional output video: original | reconstruction")
    p.add_argument("--batch-frames", type=int, default=16)
    p.add_argument("--max-frames", type=int, default=None)
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import contextlib
    import json

    from ..media.grid import make_grid
    from ..media.video import VideoReader, VideoWriter
    from ..models.loading import load_lia
    from ..pipelines.animate import AnimateOptions, frames_to_batch, transfer_motion
    from ..utils.atomic import check_output_path
    from ..utils.device import resolve_device, resolve_dtype

    out = check_output_path(args.out, args.overwrite) if args.out else None
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    animator = load_lia(args.checkpoint, device=device)
    size = animator.config.size
    reader = VideoReader(args.video)
    total = len(reader) if args.max_frames is None else min(len(reader), args.max_frames)
    first = frames_to_batch([next(reader.iter_frames(stop=1))], size, device)[0]  # (3, S, S)
    originals = reader.iter_frames(stop=total)
    targets = reader.iter_frames(stop=total)
    options = AnimateOptions(relative=False, batch_frames=args.batch_frames, dtype=dtype)
    abs_error, count = 0.0, 0
    writer = VideoWriter(out, fps=reader.info.fps) if out else contextlib.nullcontext()
    with writer as sink, progress(total, "reconstruct") as bar:
        for result in transfer_motion(animator, first, originals, options):
            target = frames_to_batch([next(targets) for _ in range(len(result))], size, device)
            abs_error += ((result - target).abs() / 2).sum().item()  # L1 on [0, 1]
            count += target.numel()
            if sink is not None:
                sink.write(make_grid([target.cpu(), result.cpu()], ncols=2))
            bar.update(len(result))
    print(json.dumps({"video": str(args.video), "frames": total, "l1": abs_error / max(count, 1)}))
    return 0
