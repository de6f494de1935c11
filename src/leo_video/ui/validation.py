"""Checks on everything a web user hands to the app, before any model sees it.

A browser upload reaches a handler as a path in Gradio's upload folder. Every such path is checked
here: it must lie inside the app's own folders (no path a user types or forges is ever read), have an
image/video suffix, stay under the size limit, and (videos) under the frame and duration limits. A
failed check raises :class:`UploadError`, whose one-line message names the input by its label in
the page ("driving video: ..."), never by the temporary path, so it reads well in the browser.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..media.image import IMAGE_SUFFIXES, open_image_checked
from ..media.video import VIDEO_SUFFIXES, VideoInfo, probe_video

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class UploadError(InputError):
    """An upload was refused (missing, wrong type, too large, too long, or outside the app's folders)."""


@dataclass(frozen=True)
class UploadLimits:
    """What the app accepts; every field has a CLI flag of `leo-video ui`.

    Attributes:
        max_upload_mb: largest accepted file, in MB (also enforced by Gradio at upload time).
        max_video_frames: longest accepted driving/edited video, in frames.
        max_video_seconds: longest accepted video, in seconds.
        max_generate_frames: cap of the Generate tab's frame slider.
        default_generate_frames: the slider's start value (small: CPU-friendly).
    """

    max_upload_mb: float = 50.0
    max_video_frames: int = 300
    max_video_seconds: float = 30.0
    max_generate_frames: int = 128
    default_generate_frames: int = 32

    def __post_init__(self) -> None:
        if self.max_upload_mb <= 0 or self.max_video_frames < 1 or self.max_video_seconds <= 0:
            raise InputError("upload limits: sizes, frames and seconds must be positive")
        if self.max_generate_frames < 1:
            raise InputError(f"--max-frames {self.max_generate_frames}: must be at least 1")
        if not 1 <= self.default_generate_frames <= self.max_generate_frames:
            raise InputError(f"default_generate_frames {self.default_generate_frames}: must be within "
                             f"1..{self.max_generate_frames}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def resolve_inside(path: str | os.PathLike, roots: Sequence[str | os.PathLike], what: str) -> Path:
    """``path`` with symlinks and ``..`` resolved, if it lies inside one of ``roots``; else UploadError.

    This is the one gate between a user-supplied path and the file system: the Gradio upload
    folder and the app's output folder are the only places the app ever reads from.
    """
    resolved = Path(path).resolve()
    for root in roots:
        if resolved.is_relative_to(Path(root).resolve()):
            return resolved
    raise UploadError(f"{what}: refused (not a file uploaded to this app)")


def _check_file(path: str | os.PathLike | None, what: str, suffixes: Sequence[str], kind: str,
                limits: UploadLimits, roots: Sequence[str | os.PathLike]) -> Path:
    if path is None or str(path) == "":
        raise UploadError(f"{what}: missing (upload {kind})")
    resolved = resolve_inside(path, roots, what)
    if not resolved.is_file():
        raise UploadError(f"{what}: the upload is gone (upload it again)")
    if resolved.suffix.lower() not in suffixes:
        shown = resolved.suffix or "no suffix"
        raise UploadError(f"{what}: {shown} is not {kind} (accepted: {' '.join(suffixes)})")
    size = resolved.stat().st_size
    if size > limits.max_upload_bytes:
        raise UploadError(f"{what}: {size / 2**20:.1f} MB is over the {limits.max_upload_mb:g} MB limit")
    return resolved


def _relabel(exc: InputError, path: Path, what: str) -> UploadError:
    """The media loaders name the file by its path; in the page the input's label reads better."""
    return UploadError(str(exc).replace(str(path), what, 1))


def check_image(path: str | os.PathLike | None, what: str, limits: UploadLimits,
                roots: Sequence[str | os.PathLike]) -> Path:
    """Validate an uploaded still; returns its resolved path. Pixels are not decoded here."""
    resolved = _check_file(path, what, IMAGE_SUFFIXES, "an image", limits, roots)
    try:
        open_image_checked(resolved).close()  # header only: size limits before any decoding
    except InputError as exc:
        raise _relabel(exc, resolved, what) from exc
    return resolved


def check_video(path: str | os.PathLike | None, what: str, limits: UploadLimits,
                roots: Sequence[str | os.PathLike]) -> VideoInfo:
    """Validate an uploaded video (type, size, frames, duration); returns its :class:`VideoInfo`."""
    resolved = _check_file(path, what, VIDEO_SUFFIXES, "a video", limits, roots)
    try:
        info = probe_video(resolved)  # demuxes packets only: exact frame count, nothing decoded past frame 1
    except InputError as exc:
        raise _relabel(exc, resolved, what) from exc
    if info.frames > limits.max_video_frames:
        raise UploadError(f"{what}: {info.frames} frames; this app accepts at most {limits.max_video_frames} "
                          "(trim the video)")
    seconds = info.frames / info.fps if info.fps > 0 else 0.0
    if seconds > limits.max_video_seconds:
        raise UploadError(f"{what}: {seconds:.1f} s long; this app accepts at most {limits.max_video_seconds:g} s "
                          "(trim the video)")
    return info


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")
