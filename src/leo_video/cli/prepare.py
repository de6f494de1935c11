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
    from pathlib import Path

    from ..data.prepare import PrepareConfig, prepare_dataset
    from ..errors import LeoError

    config = PrepareConfig(size=args.size, fps=args.fps, test_fraction=args.test_fraction,
                           crop=args.crop, seed=args.seed, crf=args.crf)
    out = Path(args.out)
    fresh = not out.exists()
    try:
        summary = prepare_dataset(args.input, out, config, overwrite=args.overwrite,
                                  progress=not args.no_progress)
    except LeoError:
        if fresh:  # a failed first run leaves no dataset folder behind (only its settings file was written)
            _remove_if_no_videos(out)
        raise
    print(summary.line())
    return 0


def _remove_if_no_videos(folder) -> None:
    import shutil

    if folder.is_dir() and not any(p.is_file() and p.name != "prepare.json" for p in folder.rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)
