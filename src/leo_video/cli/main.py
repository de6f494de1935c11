"""Entry point of the `leo-video` command.

Every subcommand is a module in this package with a ``register(subparsers)`` function that adds its
parser and sets ``func`` (called with the parsed namespace, returns an exit code or None). Modules
import heavy dependencies (torch, av) inside their ``func`` so that ``--help`` stays fast.

User errors (:class:`leo_video.errors.LeoError`) are printed as one line on stderr with a non-zero
exit code and no traceback; set ``LEO_DEBUG=1`` to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from .. import __version__
from ..errors import LeoError

# Order = order in `leo-video --help`. Add a module name here to add a subcommand.
COMMAND_MODULES: tuple[str, ...] = (
    "probe",
    "make_synthetic",
    "prepare",
)


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
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except LeoError as exc:
        if os.environ.get("LEO_DEBUG"):
            raise
        print(f"leo-video {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"leo-video {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
