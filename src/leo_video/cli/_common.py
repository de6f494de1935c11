"""Argument groups and small helpers shared by several subcommands."""

from __future__ import annotations

import argparse


def add_device_args(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    parser.add_argument("--threads", type=parse_threads, default=None, metavar="N|auto",
                        help="CPU threads for torch (default auto: the cores not busy with other processes, "
                             "at least 1; OMP_NUM_THREADS is respected)")
    if dtype:
        parser.add_argument(
            "--dtype", default="fp32", choices=("fp32", "bf16", "fp16"),
            help="compute dtype; bf16/fp16 use autocast (weights stay fp32). Default fp32",
        )


def parse_threads(text: str) -> int | None:
    """The ``--threads`` argparse type: ``auto`` (None) or a count of at least 1."""
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of threads or 'auto'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be at least 1 (or 'auto')")
    return value


def add_config_arguments(parser: argparse.ArgumentParser, kind: str, default: str | None = None) -> None:
    """Add ``--config PRESET|FILE``, ``--set KEY=VALUE`` (repeatable) and ``--print-config`` to an
    argparse parser, for configs of ``kind``."""
    from ..config import list_presets

    presets = ", ".join(list_presets(kind)) or "none"
    parser.add_argument("--config", default=default, required=default is None, metavar="PRESET|FILE",
                        help=f"a preset ({presets}) or a YAML file")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value, e.g. --set train.batch_size=8 (repeatable)")  # fmt: skip
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def config_from_args(kind: str, args: argparse.Namespace):
    """The config selected by the arguments of :func:`add_config_arguments`."""
    from ..config import resolve_config

    return resolve_config(kind, args.config, args.overrides)


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


def add_sampler_arg(parser: argparse.ArgumentParser, default: str | None, help: str) -> None:
    """``--sampler`` with the registry's names (:data:`~leo_video.diffusion.sampler_names.SAMPLER_NAMES`)."""
    from ..diffusion.sampler_names import SAMPLER_NAMES

    parser.add_argument("--sampler", choices=SAMPLER_NAMES, default=default, help=help)


def add_batch_frames_arg(parser: argparse.ArgumentParser, default: int = 16,
                         what: str = "frames encoded and rendered per batch") -> None:
    """``--batch-frames``: how many frames one model call takes (memory, not results), at least 1."""
    parser.add_argument("--batch-frames", type=positive_int, default=default, help=f"{what} (default {default})")


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

    from ..pipelines.demo import is_demo_model, unlike_demo_note

    if is_demo_model(model_path) and (text := unlike_demo_note(animator, image, str(image_path))):
        print(f"leo-video {command}: note: {text}", file=sys.stderr, flush=True)


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


def add_fast_path_args(p: argparse.ArgumentParser) -> None:
    """``--compile`` and ``--channels-last``: the animator's inference fast paths (same output within rounding)."""
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the animator: with --dtype bf16 about 1.4x the frames/s on a GPU (H100, 256²: "
                        "1,842 vs 1,297), after about a minute of compiling; pays off on long videos")
    p.add_argument("--channels-last", action="store_true",
                   help="NHWC memory layout: eager motion transfer about 1.3x faster on a GPU (H100, 256², bf16: "
                        "1,783 vs 1,339 frames/s; benchmarks/RESULTS.md)")


# ----------------------------------------------------------------------------- the parts of LEO, by name

# part -> (flag, the spelling it had before issue 20: a hidden alias for one release)
PART_FLAGS = {"animator": ("--animator", "--lia"), "motion": ("--motion", "--lmdm"),
              "start_code": ("--start-code", "--prior"), "start_frame": ("--start-frame", "--cddpm")}
PART_HELP = {"animator": "LIA checkpoint (.pt) or exported animator folder",
             "motion": "exported motion-diffusion (cLMDM) folder (from `train lmdm`)",
             "start_code": "exported start-code prior folder (from `train alpha-prior`; unconditional only)",
             "start_frame": "exported start-frame cDDPM folder (from `train cddpm`; unconditional only)"}
OLD_SPELLINGS = {old for _, old in PART_FLAGS.values()}  # accepted, never shown in --help


def add_part_arg(parser, part: str, help: str | None = None, **kwargs) -> None:
    """The flag of one part of LEO (``--animator``, ``--motion``, ``--start-code``, ``--start-frame``), which also
    accepts its old spelling (``--lia``, ``--lmdm``, ``--prior``, ``--cddpm``) without showing it."""
    flag, old = PART_FLAGS[part]
    metavar = "MODEL" if part == "animator" else "DIR"
    parser.add_argument(flag, old, dest=part, metavar=metavar, help=help or PART_HELP[part], **kwargs)


def add_pipeline_args(parser: argparse.ArgumentParser, title: str, pipeline_help: str) -> None:
    """``--pipeline`` or the four part flags: where ``generate`` and ``ui`` get their LEO pipeline."""
    group = parser.add_argument_group(title)
    group.add_argument("--pipeline", metavar="DIR", help=pipeline_help)
    for part in PART_FLAGS:
        add_part_arg(group, part)


def pipeline_sources(args: argparse.Namespace, animator_alone: bool = False):
    """The :class:`~leo_video.pipelines.sources.PipelineSources` of :func:`add_pipeline_args`' flags, checked
    (:meth:`~leo_video.pipelines.sources.PipelineSources.check`) before any model loads."""
    from ..pipelines.sources import PipelineSources

    sources = PipelineSources(args.pipeline, args.animator, args.motion, args.start_code, args.start_frame)
    sources.check(animator_alone)
    return sources


class ArgumentParser(argparse.ArgumentParser):
    """argparse with :class:`HelpFormatter` (sub-parsers too); usage errors name a renamed flag by its new
    spelling only (``the following arguments are required: --animator``, not ``--animator/--lia``)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        for old in OLD_SPELLINGS:
            message = message.replace(f"/{old}", "")
        super().error(message)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, without the old spellings of renamed flags (:data:`OLD_SPELLINGS`)."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        shown = [s for s in action.option_strings if s not in OLD_SPELLINGS]
        if shown == action.option_strings or not shown:
            return super()._format_action_invocation(action)
        hidden = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar)
        return super()._format_action_invocation(hidden)
