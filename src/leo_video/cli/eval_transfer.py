"""`leo-video eval transfer`: ground-truth motion transfer on synthetic humans, against two baselines."""

from __future__ import annotations

import argparse
import json

from ._common import add_device_args, add_overwrite_arg

PARENT = "eval"
ORDER = 66
SHEET_PAIRS = 3  # pairs shown in --sheet
SHEET_LABELS = ("driving (B)", "truth: A in B's poses", "animated A", "still baseline")


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
    p.add_argument("--checkpoint", required=True, help="LIA checkpoint (.pt) or exported folder")
    p.add_argument("--data", default=None, help="folder written by `make-synthetic --pairs` (default: render pairs now)")
    p.add_argument("--seed", type=int, default=9001, help="seed of the pairs rendered now (default 9001: people no "
                   "preset trains on)")
    p.add_argument("--pairs", type=int, default=8, help="pairs rendered now (default 8)")
    p.add_argument("--frames", type=int, default=32, help="frames per pair rendered now (default 32)")
    p.add_argument("--absolute", action="store_true", help="absolute motion codes (default: relative, as `animate`)")
    p.add_argument("--sheet", default=None, help="optional PNG: labelled contact sheet of the first pairs")
    p.add_argument("--batch-frames", type=int, default=16, help="frames rendered per batch (default 16)")
    add_device_args(p)
    add_overwrite_arg(p)
    p.set_defaults(func=run)


def _pairs(args: argparse.Namespace, size: int):
    """``(driving, target)`` uint8 (T, H, W, 3) pairs, from --data or rendered at the animator's size."""
    import numpy as np

    from ..data.synthetic import render_transfer_pair
    from ..media.video import VideoReader
    from ..metrics.transfer import list_transfer_pairs

    def read(path):  # (T, H, W, 3) uint8
        with VideoReader(path) as reader:
            return np.stack(list(reader.iter_frames()))

    if args.data:
        for driving, target in list_transfer_pairs(args.data):
            yield read(driving), read(target)
        return
    for index in range(args.pairs):
        yield render_transfer_pair(args.seed, index, args.frames, size)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import InputError
    from ..media.grid import save_contact_sheet
    from ..metrics.transfer import TransferErrors, pair_transfer_errors
    from ..models.loading import load_lia
    from ..utils.atomic import check_output_path
    from ..utils.device import resolve_device
    from ._common import progress

    for option, value in (("--pairs", args.pairs), ("--frames", args.frames), ("--batch-frames", args.batch_frames)):
        if value < 1:
            raise InputError(f"{option} {value}: must be at least 1")
    sheet = check_output_path(args.sheet, args.overwrite) if args.sheet else None
    animator = load_lia(args.checkpoint, device=resolve_device(args.device))
    result, shown = TransferErrors(), []
    with torch.no_grad(), progress(args.pairs if not args.data else None, "eval transfer", unit="pair") as bar:
        for driving, target in _pairs(args, animator.config.size):
            errors = pair_transfer_errors(animator, driving, target, not args.absolute, args.batch_frames,
                                          return_frames=sheet is not None and len(shown) < SHEET_PAIRS)  # fmt: skip
            result.add(errors)
            if "frames" in errors:
                f = errors["frames"]
                shown += [f["driving"], f["target"], f["animated"], f["target"][:1].expand_as(f["target"])]
            bar.update(1)
    if sheet is not None:
        save_contact_sheet(sheet, shown, num_frames=8, labels=SHEET_LABELS * (len(shown) // 4))
    source = args.data or f"rendered: seed {args.seed}, {args.pairs} pairs x {args.frames} frames"
    print(json.dumps({"metric": "transfer_l1", "checkpoint": args.checkpoint, "data": source,
                      "relative": not args.absolute, **result.to_dict()}))  # fmt: skip
    return 0
