"""`prepare`: turn raw videos into a dataset folder that :class:`VideoDataset` reads.

Two kinds of input:

* ``--preset taichi|celebvhq --metadata FILE --raw DIR``: the dataset's official metadata names every
  clip (raw video, time span, box, partition); :mod:`.datasets` reads it as the authors do.
* ``--input PATH ...``: every video file or frame folder is one clip, cropped to its centre, to a box
  from a crop-box JSON, or to the face a detector finds (``--crop face``, :mod:`.face_box`).

Each clip is cropped, resized to ``size x size``, optionally resampled to ``fps`` and written to
``out/train/`` or ``out/test/`` (:mod:`.clip_output`: jpg frame folders at quality 95 by default, the
fastest to load; png frame folders, lossless; or H.264 mp4 at CRF 18, the smallest)::

    out/prepare.json          the settings (a rerun with other settings is refused)
    out/prepare-report.json   what the last run found: outputs, problems (missing, too short, corrupt ...)
    out/train/<name>/0000000.jpg ...      out/test/<name>.mp4 (--format mp4)

Splits: the metadata's partition (TaichiHD), else ``--split-file`` (:mod:`.splits`), else a hash of
(seed, name). Rerunning the same command is cheap and safe: outputs are written atomically, so an
existing output is complete and is skipped; an interrupted run resumes where it stopped. A raw video
that is missing, too short or unreadable is reported and skipped, never fatal.

Crop-box JSON: ``{"<video file name, stem or relative path>": [x, y, w, h], ...}`` in pixels of the
upright frame; a non-square box is reduced to its centre square; videos without a box are
centre-cropped (and counted).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..errors import InputError
from ..media.video import VideoInfo, probe_video
from ..utils.atomic import atomic_write_text
from .clip_output import FORMATS, describe, existing_split, output_path, remove_output
from .clips import ClipSpec, TooShortError, resolve_frames
from .crop_inputs import collect_inputs, generic_specs, index_raw_folders, load_crop_boxes
from .datasets import PRESETS
from .face_box import NoFaceError
from .prepare_clip import prepare_clip, resample_indices
from .splits import assign_splits, load_split_file, split_from_file
from .video_dataset import SPLITS

__all__ = ["PrepareConfig", "PrepareSummary", "prepare_dataset", "assign_splits", "collect_inputs", "resample_indices"]

SETTINGS_FILE = "prepare.json"
REPORT_FILE = "prepare-report.json"
PROBLEMS = ("missing", "too short", "corrupt", "no face", "not in split file")


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of one prepared dataset (saved as ``prepare.json`` next to the clips)."""

    size: int = 256
    fps: float | None = None  # None keeps each video's own rate
    test_fraction: float = 0.1  # hash split only
    crop: str = "center"  # "center", "face" or the path of a crop-box JSON file (--input only)
    seed: int = 0
    crf: int = 18  # H.264 quality of --format mp4
    # "jpg" (frame folders, quality 95: the fastest to load, benchmarks/RESULTS.md), "png" (lossless) or "mp4"
    format: str = "jpg"
    preset: str | None = None  # "taichi" or "celebvhq": clips from the official metadata
    metadata: str | None = None
    split_file: str | None = None
    stills: bool = False  # --input only: every still image is a clip of one frame (an extra identity)

    def __post_init__(self) -> None:
        if self.size < 16:
            raise InputError(f"--size {self.size}: must be at least 16")
        if self.fps is not None and not self.fps > 0:
            raise InputError(f"--fps {self.fps}: must be positive")
        if not 0 <= self.test_fraction < 1:
            raise InputError(f"--test-fraction {self.test_fraction}: must be in [0, 1)")
        if self.format not in FORMATS:
            raise InputError(f"--format {self.format}: must be one of {', '.join(FORMATS)}")
        if self.preset is not None and self.preset not in PRESETS:
            raise InputError(f"--preset {self.preset}: must be one of {', '.join(PRESETS)}")
        if (self.preset is None) != (self.metadata is None):
            raise InputError("--preset and --metadata go together (the preset reads the metadata file)")
        if self.preset is not None and self.crop != "center":
            raise InputError(f"--crop {self.crop}: a --preset takes its boxes from the metadata")
        if self.preset is not None and self.stills:
            raise InputError("--stills reads still images from --input; a --preset cuts clips out of raw videos")


@dataclass
class PrepareSummary:
    """What a run did: outputs per split, problems per kind, which split rule was used."""

    written: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    existing: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    problems: list[dict] = field(default_factory=list)  # {"clip", "input", "kind", "detail"}
    boxes: dict[str, list[int]] = field(default_factory=dict)  # clip -> crop box used (x0, y0, x1, y1)
    fps: dict[str, float] = field(default_factory=dict)  # clip -> frame rate of what was written
    centre_cropped_without_box: int = 0
    split_rule: str = ""
    storage: str = ""
    existing_names: list[str] = field(default_factory=list, repr=False)

    @property
    def failed(self) -> list[tuple[str, str]]:
        """``(input, reason)`` of every clip left out."""
        return [(p["input"], p["detail"]) for p in self.problems]

    def line(self) -> str:
        total = {s: self.written[s] + self.existing[s] for s in SPLITS}
        counts = {kind: sum(p["kind"] == kind for p in self.problems) for kind in PROBLEMS}
        detail = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
        line = (
            f"prepared {sum(self.written.values())} videos, {sum(self.existing.values())} already done, "
            f"{len(self.problems)} failed{f' ({detail})' if detail else ''}; "
            f"dataset: {total['train']} train / {total['test']} test; split: {self.split_rule}; {self.storage}"
        )
        if self.centre_cropped_without_box:
            line += f"; {self.centre_cropped_without_box} without a crop box were centre-cropped"
        return line

    def add_problem(self, spec: ClipSpec, path: str, exc_or_kind: Exception | str, detail: str = "") -> str:
        kind = exc_or_kind if isinstance(exc_or_kind, str) else _kind_of(exc_or_kind)
        detail = detail or str(exc_or_kind)
        self.problems.append({"clip": spec.name, "input": path, "kind": kind, "detail": detail})
        return f"skipped {detail}" if detail.startswith(f"{path}: ") else f"skipped {path}: {kind}: {detail}"

    def to_json(self) -> dict:
        return {
            "split": self.split_rule, "storage": self.storage, "written": self.written,
            "existing": self.existing, "problems": self.problems, "boxes": self.boxes, "fps": self.fps,
            "centre_cropped_without_box": self.centre_cropped_without_box,
        }  # fmt: skip


def _kind_of(exc: Exception) -> str:
    if isinstance(exc, TooShortError):
        return "too short"
    if isinstance(exc, NoFaceError):
        return "no face"
    return "corrupt"


# ----------------------------------------------------------------------------- settings


def check_settings(out: Path, config: PrepareConfig, overwrite: bool) -> None:
    """Refuse to mix settings in one dataset folder; record the settings of this run."""
    settings = out / SETTINGS_FILE
    if settings.exists() and not overwrite:
        try:
            previous = json.loads(settings.read_text())
        except json.JSONDecodeError:
            previous = None
        if isinstance(previous, dict):  # a key added since that run has its default there (what that run did)
            previous = {**asdict(PrepareConfig()), **previous}
        if previous != asdict(config):
            raise InputError(
                f"{out}: was prepared with other settings ({settings}); "
                "pass --overwrite to redo it or use another --out"
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(settings, json.dumps(asdict(config), indent=2) + "\n")


# ----------------------------------------------------------------------------- whole dataset


def plan_clips(inputs: Sequence[str | os.PathLike], config: PrepareConfig) -> tuple[list[ClipSpec], dict]:
    """The clips to make and ``{source key: raw path or None (missing)}``."""
    if config.preset is not None:
        specs = PRESETS[config.preset](config.metadata)
        raw = index_raw_folders(inputs)
        return specs, {s.source: raw.get(s.source) for s in specs}
    boxes = load_crop_boxes(config.crop) if config.crop not in ("center", "face") else None
    return generic_specs(collect_inputs(inputs, stills=config.stills), config.crop, boxes)


@dataclass
class _Run:
    """What one `prepare` run works with (the settings, where it writes, what it has found so far)."""

    out: Path
    config: PrepareConfig
    overwrite: bool
    split_file: dict[str, str] | None
    summary: PrepareSummary
    warn: Callable[[str], None]

    def problem(self, spec: ClipSpec, path: str, exc_or_kind: Exception | str, detail: str = "") -> None:
        self.warn(self.summary.add_problem(spec, path, exc_or_kind, detail))


def prepare_dataset(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config: PrepareConfig = PrepareConfig(),
    overwrite: bool = False,
    progress: bool = True,
    warn=None,
) -> PrepareSummary:
    """Prepare every clip of ``inputs`` into ``out/{train,test}/`` (see the module docstring).

    ``inputs``: video files / frame folders / folders of them, or with ``config.preset`` the folders
    holding the raw videos ``<video id>.<ext>``. Problems are reported through ``warn(message)``
    (default: stderr), counted in the summary and listed in ``out/prepare-report.json``. Raises
    InputError for bad settings or metadata, and when no clip could be prepared at all.
    """
    from tqdm import tqdm

    warn = warn or (lambda message: tqdm.write(f"leo-video prepare: warning: {message}", file=sys.stderr))
    out = Path(out)
    specs, sources = plan_clips(inputs, config)
    if not specs:
        raise InputError(f"{', '.join(map(str, inputs))}: no videos or frame folders found")
    split_file = load_split_file(config.split_file) if config.split_file else None
    check_settings(out, config, overwrite)
    summary = PrepareSummary(storage=describe(config.format, config.crf), split_rule=_split_rule(config, specs))
    run = _Run(out, config, overwrite, split_file, summary, warn)
    checking = tqdm(specs, desc="check", unit="clip", disable=not progress, file=sys.stderr, leave=False)
    # a raw video with many clips is probed once
    probe = functools.lru_cache(maxsize=None)(functools.partial(_probe, still_ok=config.stills))
    todo = [job for spec in checking if (job := _check(spec, sources.get(spec.source), run, probe))]
    # the hash split is drawn over every usable clip, so a resumed run agrees with the first
    hashed = assign_splits([s.name for s, _, _ in todo] + summary.existing_names, config.test_fraction, config.seed)
    for spec, frames, split in tqdm(todo, desc="prepare", unit="clip", disable=not progress, file=sys.stderr):
        _make(spec, sources[spec.source], frames, split or hashed[spec.name], run)
    _keep_earlier_entries(out / REPORT_FILE, summary)
    atomic_write_text(out / REPORT_FILE, json.dumps(summary.to_json(), indent=2) + "\n")
    if not any(summary.written.values()) and not any(summary.existing.values()):
        raise InputError(f"{out}: no input could be prepared ({len(summary.problems)} failed; see {out / REPORT_FILE})")
    return summary


def _keep_earlier_entries(report: Path, summary: PrepareSummary) -> None:
    """Carry the boxes and rates of clips finished by an earlier run over from its report."""
    try:
        earlier = json.loads(report.read_text())
    except (OSError, ValueError):
        return
    for key in ("boxes", "fps"):
        entries = earlier.get(key) if isinstance(earlier, dict) else None
        if isinstance(entries, dict):
            getattr(summary, key).update({n: entries[n] for n in summary.existing_names if n in entries})


def _split_rule(config: PrepareConfig, specs: list[ClipSpec]) -> str:
    if config.split_file:
        return f"split file {config.split_file}"
    if specs and all(s.partition for s in specs):
        return f"metadata partition ({config.metadata})"
    return f"hash of (seed {config.seed}, name), test fraction {config.test_fraction}"


def _check(spec: ClipSpec, path: Path | None, run: _Run, probe) -> tuple[ClipSpec, range, str | None] | None:
    """``(spec, source frame indices, split or None for the hash split)`` when the clip is still to
    make; None when it is finished or cannot be made (counted in the summary)."""
    split = split_from_file(run.split_file, spec) if run.split_file is not None else spec.partition
    if run.split_file is not None and split is None:
        run.problem(spec, str(path), "not in split file", f"{run.config.split_file} does not list it")
        return None
    done = existing_split(run.out, spec.name, run.config.format) if not run.overwrite else None
    if done is not None:
        run.summary.existing[done] += 1
        run.summary.existing_names.append(spec.name)
        return None
    if path is None:
        run.problem(spec, spec.source, "missing", f"no raw video {spec.source}.* in the --raw folders")
        return None
    info = probe(path)
    try:
        if isinstance(info, InputError):
            raise info
        return spec, resolve_frames(spec, info.frames, info.fps), split
    except InputError as exc:
        run.problem(spec, str(path), exc)
        return None


def _probe(path: Path, still_ok: bool = False) -> VideoInfo | InputError:
    try:
        return probe_video(path, still_ok=still_ok)
    except InputError as exc:
        return exc


def _make(spec: ClipSpec, path: Path, frames: range, split: str, run: _Run) -> None:
    """Write one clip into ``split`` (removing a copy in the other split, left by an --overwrite run)."""
    fmt = run.config.format
    for other in SPLITS:
        if other != split:
            remove_output(output_path(run.out, other, spec.name, fmt))
    try:
        box, fps = prepare_clip(spec, path, frames, output_path(run.out, split, spec.name, fmt), run.config)
    except InputError as exc:
        run.problem(spec, str(path), exc)
        return None
    run.summary.written[split] += 1
    run.summary.centre_cropped_without_box += spec.region == "center" and run.config.crop not in ("center", "face")
    run.summary.fps[spec.name] = round(fps, 3)  # frame folders do not carry it
    if box is not None:
        run.summary.boxes[spec.name] = list(box)
