"""`leo-video train alpha-prior`: train the start-code prior p(α₁) on a motion-code store."""

from __future__ import annotations

import argparse

ORDER = 42
PARENT = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..config import add_config_arguments

    parser = subparsers.add_parser(
        "alpha-prior",
        help="Train the start-code prior p(alpha_1) for unconditional generation.",
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
    from pathlib import Path

    from ..config import dump_yaml, resolve_config
    from ..errors import InputError

    overrides = [*args.overrides, f"data.root={args.codes}"]
    overrides += [f"train.run_dir={args.run_dir}"] if args.run_dir else []
    config = resolve_config("alpha_prior", args.config, overrides)
    if args.print_config:
        print(dump_yaml(config), end="")
        return 0
    if not Path(args.codes).is_dir():
        raise InputError(f"{args.codes}: motion-code folder not found (--codes)")

    from ..train.alpha_prior import AlphaPriorTask
    from ..train.common import fit_and_export

    return fit_and_export(AlphaPriorTask(), config, Path(config.train.run_dir) / "export", "alpha prior")
