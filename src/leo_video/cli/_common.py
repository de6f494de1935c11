"""Argument groups and small helpers shared by several subcommands."""

from __future__ import annotations

import argparse


def add_device_args(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    from ..utils.threads import parse_threads

    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    parser.add_argument("--threads", type=parse_threads, default=None, metavar="N|auto",
                        help="CPU threads for torch (default auto: the cores not busy with other processes, "
                             "at least 1; OMP_NUM_THREADS is respected)")
    if dtype:
        parser.add_argument(
            "--dtype", default="fp32", choices=("fp32", "bf16", "fp16"),
            help="compute dtype; bf16/fp16 use autocast (weights stay fp32). Default fp32",
        )


def int_at_least(minimum: int):
    """An argparse ``type``: an integer >= ``minimum``; anything else is refused with one usage error,
    ``argument --steps: 0: must be at least 1``, the same in every command."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in some messages
    return parse


positive_int = int_at_least(1)


def add_steps_arg(parser: argparse.ArgumentParser, default: int | None, help: str) -> None:
    """``--steps`` (denoising steps, at least 1) for every command that samples."""
    parser.add_argument("--steps", type=positive_int, default=default, help=help)


ANIMATOR_HELP = ("LIA checkpoint (.pt: taichi.pt, vox.pt, ted.pt), exported animator folder, or LEO pipeline "
                 "folder (its animator is used); default: the embedded demo model (64x64, synthetic people)")


def add_animator_arg(parser: argparse.ArgumentParser, flag: str = "--checkpoint") -> None:
    """The animator option of every command that needs one (optional: the demo model by default)."""
    parser.add_argument(flag, default=None, metavar="MODEL", help=ANIMATOR_HELP)


def load_animator(path: str | None, device):
    """The LIA animator of ``path`` (:func:`~leo_video.pipelines.leo.animator_path`: checkpoint, export,
    pipeline folder, or None for the demo model) on ``device``."""
    from ..models.loading import load_lia
    from ..pipelines.leo import animator_path

    return load_lia(animator_path(path), device=device)


def note_if_unlike_demo(command: str, model_path, animator, image, image_path) -> None:
    """One note on stderr when the demo model (``model_path`` None or the demo's folder) meets a still
    ``image`` (3, S, S) that does not look like its synthetic people (a real photo), pointing to training."""
    import sys

    from ..pipelines.demo import DOMAIN_NOTE, DOMAIN_SCORE_LIMIT, demo_domain_score, is_demo_model

    if is_demo_model(model_path) and demo_domain_score(animator, image) > DOMAIN_SCORE_LIMIT:
        print(f"leo-video {command}: note: {image_path} {DOMAIN_NOTE}", file=sys.stderr, flush=True)


def model_name(path: str | None) -> str:
    """How messages name the model: its path, or "the demo model"."""
    return str(path) if path else "the demo model"


def check_video_output(path, overwrite: bool):
    """:func:`~leo_video.utils.atomic.check_output_path` plus a suffix the video writer knows, checked
    before any model loads (a ``.txt`` output used to be refused only after generation had started)."""
    from pathlib import Path

    from ..errors import InputError
    from ..media.video_writer import H264_SUFFIXES
    from ..utils.atomic import check_output_path

    suffix = Path(path).suffix.lower()
    if suffix != ".gif" and suffix not in H264_SUFFIXES:
        raise InputError(f"{path}: unsupported video suffix (use .mp4, .mov, .mkv or .gif)")
    return check_output_path(path, overwrite)


def warn(command: str, text: str) -> None:
    """One warning line on stderr: ``leo-video COMMAND: warning: TEXT`` (always shown)."""
    import sys

    print(f"leo-video {command}: warning: {text}", file=sys.stderr, flush=True)


def add_overwrite_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")


def progress(total: int | None, desc: str, unit: str = "frame"):
    """A tqdm progress bar on stderr (hidden when stderr is not a terminal and LEO_PROGRESS=0)."""
    from tqdm.auto import tqdm

    from ..utils.progress import progress_enabled

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, disable=not progress_enabled())


# More frames than this (per command run, all videos together) need --yes: 10,000 frames is 11 minutes
# at 15 fps and about 6 minutes of rendering at the demo model's ~28 frames/s on one CPU core.
FRAMES_WITHOUT_YES = 10_000


def add_yes_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true",
                        help=f"run even when more than {FRAMES_WITHOUT_YES:,} frames in all are asked for")


def check_frame_count(option: str, value: int, total: int, yes: bool) -> None:
    """Refuse ``total`` frames over :data:`FRAMES_WITHOUT_YES` unless ``yes`` (``option value`` asked for them)."""
    from ..errors import InputError

    if total > FRAMES_WITHOUT_YES and not yes:
        raise InputError(f"{option} {value}: {total:,} frames in all is over the {FRAMES_WITHOUT_YES:,}-frame limit "
                         "(hours of rendering on a CPU); pass --yes to run it anyway")


def progress_note(text: str) -> None:
    """One line of progress information on stderr (hidden, like the bars, by LEO_PROGRESS=0)."""
    import sys

    from tqdm.auto import tqdm

    from ..utils.progress import progress_enabled

    if progress_enabled():
        tqdm.write(text, file=sys.stderr)  # on its own line, above a running bar


class TimeEstimate:
    """After the first chunk, one line (:func:`progress_note`): its time and the estimate for the rest.

    The progress bar shows a running ETA too; this line stays readable in logs, where bars are redrawn.
    """

    def __init__(self, label: str, total: int, unit: str = "frames") -> None:
        import time

        self.label, self.total, self.unit = label, total, unit
        self.started, self.done = time.perf_counter(), 0

    def update(self, n: int) -> None:
        import time

        first = self.done == 0
        self.done += n
        if first and 0 < self.done < self.total:
            elapsed = time.perf_counter() - self.started
            left = elapsed / self.done * (self.total - self.done)
            progress_note(f"{self.label}: first {self.done:,} {self.unit} in {elapsed:.1f} s; about "
                          f"{format_seconds(left)} for the other {self.total - self.done:,}")


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``5 h 02 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
