"""`leo-video eval recon`: LIA's self-reenactment L1 over a test split."""

from __future__ import annotations

import argparse
import json
from ._common import add_animator_arg, add_batch_frames_arg, add_device_args, add_overwrite_arg

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
            "animator whose codes do not say which pose scores that. Also moved_l1 and moved_still_l1: both errors "
            "over only the pixels that differ from the first frame by more than 0.1 on [0, 1] (a mouth that opens "
            "is a small share of a frame; moved_l1_over_still near 1 means what moved was not drawn). Prints one "
            "JSON line."
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
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="draw the --by-motion groups (implied) as a bar chart: L1 and the still's per group, the "
                        "source's own drawing error as a line")
    p.add_argument("--sheet", metavar="PNG", default=None,
                   help="a labelled contact sheet of the first 3 videos to look at: rows original, reconstruction "
                        "and still (the first frame), 8 evenly spaced frames each")
    add_overwrite_arg(p)
    add_device_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..metrics.recon import reconstruction_error
    from ..pipelines.leo import animator_path
    from ..utils.atomic import check_output_path

    for output in (args.plot, args.sheet):  # an existing output is refused before any rendering
        if output:
            check_output_path(output, args.overwrite)
    result = reconstruction_error(args.checkpoint, args.data, args.max_videos, args.frames, args.batch_frames,
                                  args.device, args.dtype, shuffled=args.shuffled,
                                  by_motion=args.by_motion or bool(args.plot), sheet=args.sheet)
    if args.plot:
        plot_by_motion(args.plot, result)

    print(json.dumps({"metric": "recon_l1", "checkpoint": str(animator_path(args.checkpoint)), **result}))
    return 0


def plot_by_motion(path: str, result: dict) -> None:
    """The ``by_motion`` groups of a ``reconstruction_error`` result as a grouped bar chart at ``path``."""
    from ..metrics.report import grouped_bar_plot

    groups = result["by_motion"]
    labels = [f"{g['still_from']:.3f}-{g['still_to']:.3f}\n{g['frames']} frames" for g in groups]
    grouped_bar_plot(path, labels, {"animator": [g["l1"] for g in groups], "still": [g["still_l1"] for g in groups]},
                     line=(result["source_l1"], "source drawn from its own code"),
                     title=f"held-out self-reenactment by motion ({result['num_videos']} videos): "
                           f"L1 / still {result['l1_over_still']:.3f}",
                     xlabel="frames in four equal groups by the still's L1 (how far each is from its video's first)",
                     ylabel="L1 on [0, 1]")
