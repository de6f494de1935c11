"""`leo-video eval recon`: LIA's self-reenactment L1 over a test split."""

from __future__ import annotations

import argparse
import json
from ._common import add_animator_arg, add_batch_frames_arg, add_device_args

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
            "repeated) on the same frames: an animator that ignores its driver scores that; and the shuffled-codes "
            "baseline (every frame rendered with the code of another frame of its video, a fixed random order): an "
            "animator whose codes do not say which pose scores that. Prints one JSON line."
        ),
    )
    add_animator_arg(p)
    p.add_argument("--data", required=True,
                   help="folder of test videos (DATASET/test; a dataset with train/test folders means its test split)")
    p.add_argument("--max-videos", type=int, default=None, help="only the first N videos")
    p.add_argument("--frames", type=int, default=None, help="only the first N frames of each video")
    add_batch_frames_arg(p, 16, "frames rendered per batch")
    p.add_argument("--no-shuffled", dest="shuffled", action="store_false",
                   help="skip the shuffled-codes baseline (it renders every video twice)")
    p.add_argument("--by-motion", action="store_true",
                   help="also split the frames into four equal groups by how far each is from its video's first "
                        "frame (the still's error) with L1 and still L1 per group, and report the source's own "
                        "rendering error (frame 0: the animator's floor): does it lose to the still for blur or "
                        "for motion?")
    add_device_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..metrics.recon import reconstruction_error
    from ..pipelines.leo import animator_path

    result = reconstruction_error(args.checkpoint, args.data, args.max_videos, args.frames, args.batch_frames,
                                  args.device, args.dtype, shuffled=args.shuffled, by_motion=args.by_motion)

    print(json.dumps({"metric": "recon_l1", "checkpoint": str(animator_path(args.checkpoint)), **result}))
    return 0
