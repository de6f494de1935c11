"""`leo-video train lia`: train or fine-tune LIA, LEO's stage-1 image animator, on the shared loop."""

from __future__ import annotations

import argparse

ORDER = 40
PARENT = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ._common import add_config_arguments

    parser = subparsers.add_parser(
        "lia",
        help="train or fine-tune the LIA animator (stage 1) on pairs of frames of your videos",
        description=(
            "Self-supervised LIA training: L1 + perceptual (VGG19, or the Kinetics-400 I3D's early layers with "
            "loss.perceptual_network=i3d-k400) + non-saturating GAN loss on (source, driving) "
            "frame pairs of the videos under data.root/train, on CPU, one GPU or many (accelerate launch / "
            "torchrun). The resolved config is saved as RUN_DIR/config.yaml; checkpoints go to "
            "RUN_DIR/checkpoints and TensorBoard logs to RUN_DIR/tb. Rerunning the same command resumes."
        ),
        epilog=(
            "examples: leo-video make-synthetic --out data/synthetic --videos 16 && leo-video train lia --config "
            "synthetic64;  leo-video train lia --config taichi256 --set data.root=data/taichi --init taichi.pt"
        ),
    )
    add_config_arguments(parser, "lia")
    parser.add_argument("--run-dir", metavar="DIR", help="run folder (default: the config's train.run_dir)")
    parser.add_argument("--init", metavar="CKPT",
                        help="fine-tune from an official LIA checkpoint (vox.pt, taichi.pt, ted.pt) or an export; "
                             "the model architecture is read from it")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..config import dump_yaml, resolve_config

    overrides = list(args.overrides)
    if args.run_dir:
        overrides.append(f"train.run_dir={args.run_dir}")
    if args.init:
        overrides.append(f"model.init_checkpoint={args.init}")
    config = resolve_config("lia", args.config, overrides)

    from ..train.lia import LIATrainingTask, adopt_init_architecture
    from ..train.loop import Trainer

    changes = adopt_init_architecture(config)  # the init checkpoint, not the preset, decides the architecture
    if args.print_config:
        print(dump_yaml(config), end="")
        return 0
    if changes:
        print(f"architecture from {config.model.init_checkpoint}: {'; '.join(changes)}")
    trainer = Trainer(LIATrainingTask(), config)
    run_dir = Path(config.train.run_dir)
    if trainer.accelerator.is_main_process:
        print(f"run folder {run_dir}: checkpoints in {run_dir / 'checkpoints'}, TensorBoard logs in {run_dir / 'tb'} "
              f"(tensorboard --logdir {run_dir / 'tb'})")  # fmt: skip
    result = trainer.fit()
    if not trainer.accelerator.is_main_process:
        return 0
    if result.stop_reason:
        print(f"leo-video train lia: warning: stopped at step {result.step}: {result.stop_reason}; "
              f"checkpoint {result.checkpoint}", file=sys.stderr)  # fmt: skip
        return 3
    if result.interrupted:
        print(f"stopped at step {result.step}; checkpoint {result.checkpoint}; rerun the same command to resume")
    else:
        print(f"trained {result.step} steps; checkpoint {result.checkpoint}; "
              f"export with: leo-video export --checkpoint {run_dir} --out {run_dir / 'export'}")  # fmt: skip
    return 0
