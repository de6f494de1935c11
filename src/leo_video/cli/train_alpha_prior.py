"""`leo-video train alpha-prior`: train the start-code prior p(α₁) on a motion-code store."""

from __future__ import annotations

import argparse

ORDER = 42
PARENT = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ._common import add_config_arguments

    parser = subparsers.add_parser(
        "alpha-prior",
        help="train the start-code prior p(alpha_1) for unconditional generation",
        description=(
            "Train a small diffusion model (MLP denoiser) over single motion codes: the first code of "
            "every training video in CODES (data.codes=first, default) or every code (data.codes=all). "
            "Rerunning the same command resumes the run. The final model (EMA weights when kept) is "
            "exported to RUN_DIR/export."
        ),
        epilog="example: leo-video train alpha-prior --codes runs/codes-synthetic64 --config synthetic64",
    )
    parser.add_argument("--codes", required=True, metavar="CODES", help="motion-code store folder")
    add_config_arguments(parser, "alpha_prior", default="synthetic64")
    parser.add_argument("--run-dir", metavar="DIR", help="run folder (default: the config's train.run_dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .train_lmdm import run_on_codes

    return run_on_codes("alpha_prior", "alpha prior", args.codes, args.config, args.overrides, args.run_dir,
                        args.print_config)
