"""`leo-video export`: a LIA training run -> an inference folder (config.json + safetensors) for load_lia."""

from __future__ import annotations

import argparse

ORDER = 45


def register(subparsers: argparse._SubParsersAction) -> None:
    from ._common import add_overwrite_arg

    parser = subparsers.add_parser(
        "export",
        help="export a trained LIA run as an inference folder (config.json + safetensors)",
        description=(
            "Read the newest checkpoint of a `leo-video train lia` run folder (or one checkpoint file) and "
            "write its generator with save_pretrained: a folder that `--checkpoint` of animate, reconstruct, "
            "eval recon ... and load_lia() read without the training code."
        ),
        epilog="example: leo-video export --checkpoint runs/lia-synthetic64 --out models/lia-synthetic64 --ema",
    )
    parser.add_argument("--checkpoint", required=True, metavar="RUN_DIR|CKPT",
                        help="a run folder (its newest checkpoint) or a checkpoints/step_*.pt file")  # fmt: skip
    parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    parser.add_argument("--ema", action="store_true", help="export the EMA weights (needs train.ema=true)")
    add_overwrite_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train.lia import export_generator

    folder = export_generator(args.checkpoint, args.out, ema=args.ema, overwrite=args.overwrite)
    print(f"exported {'EMA ' if args.ema else ''}generator to {folder}")
    return 0
