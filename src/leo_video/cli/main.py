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

SIGTERM, SIGINT and SIGHUP stop a command cleanly: the temporary outputs it was writing are removed
(:func:`leo_video.utils.atomic.remove_live_temps`), the open writers unwind, and the exit status is
128 + the signal's number (143, 130, 129). Training replaces the SIGTERM/SIGINT handlers with its
own while it runs (save a checkpoint, then stop).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
import threading
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
    "train": "train a part: the animator (train lia), the motion diffusion (train lmdm), the start-code prior "
    "(train alpha-prior) or the start-frame model (train cddpm)",
    "eval": "evaluate: fvd, kvd, acd, motion statistics, reconstruction, or all of them as a report",
}


def build_parser() -> argparse.ArgumentParser:
    from ._common import ArgumentParser

    parser = ArgumentParser(  # its sub-parsers are of its class
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
            helptext = GROUP_HELP[parent]  # a phrase in the list of commands, a sentence atop the group's own --help
            group = subparsers.add_parser(parent, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
            groups[parent] = group.add_subparsers(dest="subcommand", metavar="WHAT")
            group.set_defaults(func=None, _group=group)
        module.register(groups[parent])
    return parser


STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


class Stopped(BaseException):
    """Raised by the stop-signal handler (a BaseException, so ``except Exception`` does not swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _StopHandlers:
    """Install the stop-signal handlers for one command (main thread only) and restore the old ones.

    First signal: remove the live temporary outputs, then raise :class:`Stopped` so that writers and
    context managers unwind. A second signal while unwinding exits at once (temps removed again).
    Forked children (DataLoader workers) inherit the handler but leave the parent's files alone.
    """

    def __init__(self) -> None:
        self.previous: dict[int, object] = {}
        self.pid = os.getpid()
        self.signum: int | None = None  # the stop signal received, if any
        self.previous_unraisable = sys.unraisablehook

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> "_StopHandlers":
        from ..utils.atomic import allow_outputs

        allow_outputs()
        if threading.current_thread() is threading.main_thread():
            sys.unraisablehook = self._unraisable
            for name in STOP_SIGNALS:
                if hasattr(signal, name):  # no SIGHUP on Windows
                    signum = getattr(signal, name)
                    self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = self.previous_unraisable

    def _unraisable(self, info) -> None:
        """A Stopped raised inside a finaliser (a generator closed by the garbage collector) is swallowed by
        Python; the stop is still remembered in ``signum``, so print nothing."""
        if not isinstance(info.exc_value, Stopped):
            self.previous_unraisable(info)

    def _handle(self, signum: int, frame) -> None:
        from ..utils.atomic import remove_live_temps

        if os.getpid() != self.pid:  # a forked worker: die as the signal's default would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        remove_live_temps()
        if self.stopping:
            os._exit(128 + signum)
        self.signum = signum
        raise Stopped(signum)


def main(argv: Sequence[str] | None = None) -> int:
    # Before torch loads (building the parser imports it): idle OpenMP threads sleep instead of spinning,
    # which on a shared CPU took the cores from the working threads (leo_video.utils.threads).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        getattr(args, "_group", parser).print_help()
        return 2
    stop = _StopHandlers()
    try:
        with stop, _threads(args):
            code = args.func(args)
    except Stopped:
        pass
    except LeoError as exc:
        if os.environ.get("LEO_DEBUG"):
            raise
        if not stop.stopping:
            print(f"{_command_name(args)}: error: {exc}", file=sys.stderr)
            return exc.exit_code
    except KeyboardInterrupt:
        print(f"{_command_name(args)}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        if not stop.stopping:  # a stop can surface as another error (a removed temp file): report the stop
            raise
    if stop.stopping:
        name = signal.Signals(stop.signum).name
        print(f"{_command_name(args)}: stopped by {name}; unfinished outputs were removed", file=sys.stderr)
        return 128 + stop.signum
    return int(code or 0)


def _threads(args: argparse.Namespace):
    """``--threads`` (commands with device options; auto by default) for the command's duration."""
    import contextlib

    if not hasattr(args, "threads"):
        return contextlib.nullcontext()
    from ..utils.threads import cpu_threads

    return cpu_threads(args.threads)


def _command_name(args: argparse.Namespace) -> str:
    parts = ["leo-video", args.command, getattr(args, "subcommand", None)]
    return " ".join(p for p in parts if p)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
