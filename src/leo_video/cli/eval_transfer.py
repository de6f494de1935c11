"""`leo-video eval transfer`: ground-truth motion transfer on synthetic humans, against two baselines."""

from __future__ import annotations

import argparse
import json

from ._common import add_animator_arg, add_batch_frames_arg, add_device_args, add_overwrite_arg, load_animator

PARENT = "eval"
ORDER = 66


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transfer",
        help="motion-transfer L1 against the true rendering (synthetic pairs), next to still and wrong-identity baselines",
        description=(
            "For every pair: animate A's first frame with B's video and compare with the true rendering of A "
            "performing B's motion (L1 on [0, 1] at the animator's size). Baselines from the same frames: A's "
            "first frame repeated (still) and B's frames themselves (wrong identity). Pairs come from --data "
            "(`leo-video make-synthetic --pairs N`) or are rendered on the fly (--seed/--pairs/--frames). "
            "Prints one JSON line."
        ),
    )
    add_animator_arg(p)
    p.add_argument("--data", default=None, help="folder written by `make-synthetic --pairs` (default: render pairs now)")
    p.add_argument("--seed", type=int, default=9001, help="seed of the pairs rendered now (default 9001: people no "
                   "preset trains on)")
    p.add_argument("--pairs", type=int, default=8, help="pairs rendered now (default 8)")
    p.add_argument("--frames", type=int, default=32, help="frames per pair rendered now (default 32)")
    p.add_argument("--absolute", action="store_true", help="absolute motion codes (default: relative, as `animate`)")
    p.add_argument("--sheet", default=None, help="optional PNG: labelled contact sheet of the first pairs")
    add_batch_frames_arg(p, 16, "frames rendered per batch")
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..metrics.transfer import transfer_pairs, write_transfer_errors
    from ..pipelines.leo import animator_path
    from ..utils.atomic import check_output_path
    from ..utils.device import resolve_device

    for option, value in (("--pairs", args.pairs), ("--frames", args.frames)):
        if value < 1:
            raise InputError(f"{option} {value}: must be at least 1")
    sheet = check_output_path(args.sheet, args.overwrite) if args.sheet else None
    animator = load_animator(args.checkpoint, resolve_device(args.device))
    pairs = transfer_pairs(args.data, args.seed, args.pairs, args.frames, animator.config.size)
    result = write_transfer_errors(animator, pairs, not args.absolute, args.batch_frames, sheet,
                                   None if args.data else args.pairs)
    source = args.data or f"rendered: seed {args.seed}, {args.pairs} pairs x {args.frames} frames"
    print(json.dumps({"metric": "transfer_l1", "checkpoint": str(animator_path(args.checkpoint)), "data": source,
                      "relative": not args.absolute, **result.to_dict()}))  # fmt: skip
    return 0
