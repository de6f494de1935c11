"""`leo-video prepare`: raw videos -> a square-cropped, resized train/test dataset of mp4s."""

from __future__ import annotations

import argparse

ORDER = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="Turn raw videos into a dataset folder (square crop, resize, optional fps, train/test split).",
        description=(
            "Crop every input video (files or frame folders, or folders of them) to a square — its centre, "
            "or a per-video box from a JSON file {name: [x, y, w, h]} — resize it to --size, optionally "
            "resample to --fps, and write H.264 mp4s to OUT/train and OUT/test. Rerunning the same command "
            "skips finished videos (idempotent, resumable); unreadable inputs are skipped with a warning "
            "and counted in the summary."
        ),
        epilog="example: leo-video prepare --input raw_videos/ --out data/taichi256 --size 256 --test-fraction 0.1",
    )
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="video files, frame folders, or folders holding them (searched recursively)")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create or complete")
    parser.add_argument("--size", type=int, default=256, help="output frame size in pixels (default 256)")
    parser.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: keep)")
    parser.add_argument("--test-fraction", type=float, default=0.1,
                        help="share of videos put in test/ (default 0.1; at least one when > 0)")
    parser.add_argument("--crop", default="center", metavar="center|FILE.json",
                        help="'center' (default) or a JSON file of per-video boxes {name: [x, y, w, h]}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
    parser.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default 18)")
    parser.add_argument("--overwrite", action="store_true", help="redo every video (also after changing settings)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.prepare import PrepareConfig, prepare_dataset

    config = PrepareConfig(size=args.size, fps=args.fps, test_fraction=args.test_fraction,
                           crop=args.crop, seed=args.seed, crf=args.crf)
    summary = prepare_dataset(args.input, args.out, config, overwrite=args.overwrite,
                              progress=not args.no_progress)
    print(summary.line())
    return 0
