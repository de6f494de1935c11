"""`leo-video eval motion`: compare generated motion-code sequences with real ones (LMDM)."""

from __future__ import annotations

import argparse
import json

PARENT = "eval"
ORDER = 63


def add_motion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", type=int, default=16, help="codes per window of the window Fréchet distance (default 16)")
    p.add_argument("--stride", type=int, default=None, help="step between window starts (default window // 2)")
    p.add_argument("--relative", action="store_true",
                   help="subtract each window's first code (motion relative to the window start, like LMC)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "motion",
        help="Fréchet distance of motion-code windows and frame-to-frame jitter, real vs generated",
        description=(
            "On motion-code sequences (T, M): the Fréchet distance between windows of consecutive codes "
            "(flattened) of the real and generated sets, and the mean ||alpha_{i+1} - alpha_i|| of each set "
            "with their ratio (1 is ideal). CODES is a motion-code store folder (leo-video encode-motion) or a "
            ".safetensors / .pt file of (N, T, M) or (T, M) tensors. Prints one JSON line."
        ),
    )
    p.add_argument("--real", required=True, metavar="CODES", help="real codes (encoded from real videos)")
    p.add_argument("--fake", required=True, metavar="CODES", help="generated codes (LMDM samples)")
    add_motion_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..metrics.evaluate import load_code_sequences
    from ..metrics.motion import motion_report

    real = load_code_sequences(args.real, "--real")
    fake = load_code_sequences(args.fake, "--fake")
    report = motion_report(real, fake, window=args.window, stride=args.stride, relative=args.relative)
    print(json.dumps({"metric": "motion", **report, "relative": args.relative}))
    return 0
