"""`leo-video eval kvd`: kernel video distance (unbiased polynomial-kernel MMD² on I3D features)."""

from __future__ import annotations

import argparse
import json

from .eval_fvd import add_video_distance_args

PARENT = "eval"
ORDER = 61


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "kvd",
        help="kernel video distance (MMD² with k(x, y) = (x·y/d + 1)^3 on I3D features)",
        description=(
            "KVD between real and generated videos on the same I3D features and clips as `eval fvd`: the "
            "unbiased MMD² with the polynomial kernel (x·y/d + 1)^3 over all clips, not scaled (a KID-style "
            "'x 10^3' number is this times 1000). Prints one JSON line."
        ),
    )
    add_video_distance_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..metrics.video_distance import video_distance
    from .eval_fvd import distance_options

    print(json.dumps(video_distance(distance_options(args), "kvd")))
    return 0
