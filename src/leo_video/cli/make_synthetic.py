"""`leo-video make-synthetic`: render a procedural synthetic-humans dataset (train/test)."""

from __future__ import annotations

import argparse

ORDER = 25


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-synthetic",
        help="render a synthetic-humans dataset (articulated figures doing Tai-Chi-like motion)",
        description=(
            "Render N procedural videos of human-like figures (random proportions, clothes, skin, hair and "
            "backgrounds; smooth Tai-Chi-like motion) into OUT/train and OUT/test, plus OUT/dataset.json "
            "with the parameters. The same --seed gives bit-identical frames on any machine. A non-empty "
            "OUT is refused unless --overwrite (which only ever replaces an earlier synthetic dataset)."
        ),
        epilog="example: leo-video make-synthetic --out data/synthetic64 --videos 200 --frames 64 --size 64 --seed 0",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create")
    parser.add_argument("--videos", type=int, default=100, metavar="N", help="number of videos (default 100)")
    parser.add_argument("--frames", type=int, default=32, metavar="T", help="frames per video (default 32)")
    parser.add_argument("--size", type=int, default=64, metavar="S", help="frame size in pixels, 32..512 (default 64)")
    parser.add_argument("--seed", type=int, default=0, metavar="K", help="dataset seed (default 0)")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate of the motion and the files (default 15)")
    parser.add_argument("--motion-speed", type=float, default=1.0,
                        help="multiplies every motion frequency (default 1; 0 = still poses)")
    parser.add_argument("--format", choices=("mp4", "frames"), default="mp4",
                        help="mp4 (H.264) files or folders of PNG frames (lossless); default mp4")
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="share of videos in test/ (default 0.2; at least one when > 0)")
    parser.add_argument("--pairs", type=int, default=None, metavar="N",
                        help="instead of a dataset, write N ground-truth motion-transfer pairs to OUT/pairs/: "
                             "person 2i performing person 2i+1's motion (target) and 2i+1's own video (driving), "
                             "for `leo-video eval transfer --data OUT`")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="render N videos at once in separate processes (default 1; the files are the same "
                             "for any N)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier synthetic dataset in DIR")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.synthetic import SyntheticHumanConfig, make_synthetic_dataset, split_counts
    from ..utils.progress import progress_enabled

    config = SyntheticHumanConfig(fps=args.fps, motion_speed=args.motion_speed)
    progress = not args.no_progress and progress_enabled()
    if args.pairs is not None:
        from ..data.synthetic import make_transfer_pairs

        out = make_transfer_pairs(args.out, args.pairs, args.frames, args.size, args.seed, args.format, progress,
                                  overwrite=args.overwrite, config=config)  # fmt: skip
        print(f"wrote {args.pairs} transfer pairs ({args.frames} frames, {args.size}x{args.size}) to {out / 'pairs'}")
        return 0
    out = make_synthetic_dataset(args.out, args.videos, args.frames, args.size, args.seed, args.test_fraction,
                                 args.format, progress, overwrite=args.overwrite, config=config, workers=args.workers)
    train, test = split_counts(args.videos, args.test_fraction)
    print(f"wrote {train} train + {test} test synthetic videos ({args.frames} frames, {args.size}x{args.size}) to {out}")
    return 0
