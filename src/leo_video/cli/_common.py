"""Argument groups and small helpers shared by several subcommands."""

from __future__ import annotations

import argparse


def add_device_args(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    if dtype:
        parser.add_argument(
            "--dtype", default="fp32", choices=("fp32", "bf16", "fp16"),
            help="compute dtype; bf16/fp16 use autocast (weights stay fp32). Default fp32",
        )


def add_overwrite_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")


def progress(total: int | None, desc: str, unit: str = "frame"):
    """A tqdm progress bar on stderr (hidden when stderr is not a terminal and LEO_PROGRESS=0)."""
    from tqdm.auto import tqdm

    from ..utils.progress import progress_enabled

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=not progress_enabled())
