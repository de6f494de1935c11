"""`leo-video train lmdm`: train cLMDM (with LMC, or the no-LMC ablation) on a motion-code store."""

from __future__ import annotations

import argparse

ORDER = 41
PARENT = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ._common import add_config_arguments, add_part_arg

    parser = subparsers.add_parser(
        "lmdm",
        help="train the latent motion diffusion model (cLMDM) on encoded motion codes",
        description=(
            "Train a 1D temporal U-Net diffusion model over clips of L motion codes from the train split "
            "of CODES (written by leo-video encode-motion), with the Linear Motion Condition "
            "(model.use_lmc=true) or without it (the paper's ablation). Code statistics come from the "
            "training codes and are stored with the model. With --animator, sampled sequences are rendered "
            "from test videos' first frames into TensorBoard. Rerunning the same command resumes the run. "
            "The final model (EMA weights when kept) is exported to RUN_DIR/export."
        ),
        epilog=("example: leo-video train lmdm --codes runs/codes-synthetic64 --config synthetic64 "
                "--animator runs/lia-synthetic64/export --set train.max_steps=2000"),  # fmt: skip
    )
    parser.add_argument("--codes", required=True, metavar="CODES", help="motion-code store folder")
    add_part_arg(parser, "animator", "LIA checkpoint or export: render samples for TensorBoard")
    add_config_arguments(parser, "lmdm", default="synthetic64")
    parser.add_argument("--run-dir", metavar="DIR", help="run folder (default: the config's train.run_dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import InputError

    if args.animator and not Path(args.animator).exists() and not args.print_config:
        raise InputError(f"{args.animator}: LIA checkpoint not found (--animator)")
    extra = [f"data.lia={args.animator}"] if args.animator else []
    return run_on_codes("lmdm", "cLMDM", args.codes, args.config, [*args.overrides, *extra], args.run_dir,
                        args.print_config)


def run_on_codes(kind: str, what: str, codes: str, preset: str, overrides: list[str], run_dir: str | None,
                 print_config: bool) -> int:
    """Shared by the stages trained on a motion-code store (``train lmdm``, ``train alpha-prior``):
    resolve the config of ``kind`` (``codes`` is ``data.root``), print it or train and export to ``RUN_DIR/export``."""
    from pathlib import Path

    from ..config import dump_yaml, resolve_config
    from ..errors import InputError

    overrides = [*overrides, f"data.root={codes}"] + ([f"train.run_dir={run_dir}"] if run_dir else [])
    config = resolve_config(kind, preset, overrides)
    if print_config:
        print(dump_yaml(config), end="")
        return 0
    if not Path(codes).is_dir():
        raise InputError(f"{codes}: motion-code folder not found (--codes)")

    from ..train.alpha_prior import AlphaPriorTask
    from ..train.common import fit_and_export
    from ..train.lmdm import LMDMTask

    task = {"lmdm": LMDMTask, "alpha_prior": AlphaPriorTask}[kind]()
    return fit_and_export(task, config, Path(config.train.run_dir) / "export", what)
