"""`leo-video demo`: the main job on the embedded default, runnable on a fresh CPU-only machine.

Loads the demo LEO shipped in the package (or ``--pipeline DIR``) and writes every use of it on
synthetic people it never saw: unconditional, from a still, infinite length, motion transfer and
editing, plus a GIF and a contact sheet (see :func:`leo_video.pipelines.demo.write_demo`).
"""

from __future__ import annotations

import argparse

from ._common import FRAMES_WITHOUT_YES, add_device_args, add_steps_arg, add_yes_arg

ORDER = 1
DEMO_VIDEOS = 8  # videos of --frames frames the demo renders (see write_demo)


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..pipelines.demo_settings import DemoSettings

    defaults = DemoSettings()
    parser = subparsers.add_parser(
        "demo",
        help="generate videos with the embedded demo LEO (no GPU, no download); writes videos and a contact sheet",
        description=(
            "Generate with the demo LEO shipped in the package (64x64, trained on synthetic humans) and write "
            "OUT/unconditional.mp4, conditional.mp4, infinite.mp4, transfer.mp4, edit.mp4, demo.gif and "
            "contact_sheet.png. Takes well under a minute on 2 CPU cores. Rerunning replaces the demo's files."
        ),
        epilog="example: leo-video demo --out demo --seed 3",
    )
    parser.add_argument("--out", default="demo", metavar="DIR", help="output folder (default demo)")
    parser.add_argument("--pipeline", metavar="DIR", help="use this pipeline folder instead of the embedded one")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="sampling seed (default 0)")
    parser.add_argument("--frames", type=int, default=defaults.num_frames, help="frames per video (default 40)")
    parser.add_argument("--infinite-frames", type=int, default=defaults.infinite_frames,
                        help=f"frames of the infinite-length video (default 320; over {FRAMES_WITHOUT_YES:,} with --yes)")
    add_steps_arg(parser, defaults.steps, "denoising steps, at least 1 (default 25)")
    add_device_args(parser, dtype=False)
    add_yes_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from ..errors import InputError
    from ..pipelines.demo import DemoSettings, load_demo_pipeline, write_demo
    from ..pipelines.leo import LEOPipeline
    from ..utils.device import resolve_device
    from ._common import check_frame_count

    if args.frames < 2 or args.infinite_frames < 2:
        raise InputError("--frames and --infinite-frames must be at least 2")
    # --frames: 4 unconditional + 2 conditional videos, transfer and edit (each held whole for the grids)
    check_frame_count("--frames", args.frames, DEMO_VIDEOS * args.frames, args.yes)
    check_frame_count("--infinite-frames", args.infinite_frames, args.infinite_frames, args.yes)
    device = resolve_device(args.device)
    pipe = LEOPipeline.from_pretrained(args.pipeline, device=device) if args.pipeline else load_demo_pipeline(device)
    settings = DemoSettings(num_frames=args.frames, infinite_frames=args.infinite_frames, seed=args.seed,
                            steps=args.steps)
    started = time.perf_counter()
    paths = write_demo(pipe, args.out, settings, report=lambda line: print(line, file=sys.stderr), show_progress=True)
    for label, path in paths.items():
        print(f"{label + ':':15} {path}")
    print(f"done in {time.perf_counter() - started:.1f} s; open {paths['contact sheet']} for an overview")
    return 0
