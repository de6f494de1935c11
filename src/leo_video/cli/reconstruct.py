"""`leo-video reconstruct`: self-reenactment from the first frame (LIA's evaluation protocol)."""

from __future__ import annotations

import argparse

from ._common import add_animator_arg, add_batch_frames_arg, add_device_args, add_overwrite_arg

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
    add_batch_frames_arg(p)
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames (default: all)")
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..metrics.recon import reconstruct_video
    from ..utils.device import resolve_device, resolve_dtype
    from ._common import check_video_output, load_animator, model_name

    out = check_video_output(args.out, args.overwrite) if args.out else None
    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    animator = load_animator(args.checkpoint, device)
    result = reconstruct_video(animator, args.video, out, args.max_frames, args.batch_frames, dtype,
                               model=model_name(args.checkpoint))
    print(json.dumps(result))
    return 0
