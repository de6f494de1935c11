"""`leo-video train cddpm`: train the start-frame cDDPM (x₁ given its motion code α₁) on the shared loop."""

from __future__ import annotations

import argparse

ORDER = 43
PARENT = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ._common import add_config_arguments, add_part_arg

    parser = subparsers.add_parser(
        "cddpm",
        help="train the cDDPM that draws a start frame from its motion code (fully unconditional LEO)",
        description=(
            "Train an image diffusion model (diffusers UNet2DModel, the motion code added to its timestep "
            "embedding, classifier-free guidance) on (frame, code) pairs: frames from the videos under "
            "DATA/train, codes from the frozen LIA encoder. Rerunning the same command resumes the run. "
            "The final model (EMA weights when kept) is exported to RUN_DIR/export (config.json + "
            "safetensors); sample grids go to TensorBoard under RUN_DIR/tb."
        ),
        epilog=(
            "example: leo-video train cddpm --data data/synthetic64 --animator runs/lia-synthetic64/export "
            "--config synthetic64 --set train.max_steps=500"
        ),
    )
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset folder (videos under DIR/train)")
    add_part_arg(parser, "animator", "LIA checkpoint (.pt) or exported folder (its encoder gives the codes)",
                 required=True)
    add_config_arguments(parser, "cddpm", default="synthetic64")
    parser.add_argument("--run-dir", metavar="DIR", help="run folder (default: the config's train.run_dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..config import dump_yaml, resolve_config
    from ..errors import InputError

    overrides = [*args.overrides, f"data.root={args.data}", f"data.lia={args.animator}"]
    if args.run_dir:
        overrides.append(f"train.run_dir={args.run_dir}")
    config = resolve_config("cddpm", args.config, overrides)
    if args.print_config:
        print(dump_yaml(config), end="")
        return 0
    if not Path(args.animator).exists():
        raise InputError(f"{args.animator}: LIA checkpoint not found (--animator)")

    from ..train.cddpm import CDDPMTask
    from ..train.common import fit_and_export

    return fit_and_export(CDDPMTask(), config, Path(config.train.run_dir) / "export", "cDDPM")
