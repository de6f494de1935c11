"""Entry point of the `leo-video` command.

Every subcommand is a module in this package that defines ``ORDER`` (an int: its place in
``leo-video --help``) and ``register(subparsers)``, which adds its parser and sets ``func`` (called
with the parsed namespace, returns an exit code or None). Modules are discovered automatically, so
adding a command is adding a module. They import heavy dependencies (torch, av) inside ``func`` so
that ``--help`` stays fast.

Grouped commands (``leo-video train lia``, ``leo-video eval fvd``) are modules that also define
``PARENT = "train"`` (or ``"eval"``); the group's parser is made on first use, with its help text
from ``GROUP_HELP``.

User errors (:class:`leo_video.errors.LeoError`) are printed as one line on stderr with a non-zero
exit code and no traceback; set ``LEO_DEBUG=1`` to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import Sequence

from .. import __version__
from ..errors import LeoError


def command_modules() -> list:
    """The subcommand modules of this package, in ``ORDER``."""
    modules = []
    for info in pkgutil.iter_modules(_package_path()):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def _package_path() -> list[str]:
    return list(importlib.import_module(__package__).__path__)


GROUP_HELP = {
    "train": "Train a stage: the animator (lia), the motion diffusion (lmdm), the start-code prior "
    "(alpha-prior) or the start-frame model (cddpm).",
    "eval": "Evaluate: fvd, kvd, acd, motion statistics, reconstruction, or all of them as a report.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leo-video",
        description=(
            "LEO: human video synthesis with a latent image animator (LIA) and latent motion "
            "diffusion. Run `leo-video COMMAND --help` for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"leo-video {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for module in command_modules():
        parent = getattr(module, "PARENT", None)
        if parent is None:
            module.register(subparsers)
            continue
        if parent not in groups:
            group = subparsers.add_parser(parent, help=GROUP_HELP[parent], description=GROUP_HELP[parent])
            groups[parent] = group.add_subparsers(dest="subcommand", metavar="WHAT")
            group.set_defaults(func=None, _group=group)
        module.register(groups[parent])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        getattr(args, "_group", parser).print_help()
        return 2
    try:
        code = args.func(args)
    except LeoError as exc:
        if os.environ.get("LEO_DEBUG"):
            raise
        print(f"{_command_name(args)}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{_command_name(args)}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def _command_name(args: argparse.Namespace) -> str:
    parts = ["leo-video", args.command, getattr(args, "subcommand", None)]
    return " ".join(p for p in parts if p)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
