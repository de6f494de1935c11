"""The edited first frame of ``leo-video edit --editor controlnet`` (and of the library): one call that
checks the editor can run, one that makes the frame. The edit then animates exactly like a given frame."""

from __future__ import annotations

import os

import torch

from .config import ControlNetEditorConfig


def check_editor_ready(config: ControlNetEditorConfig) -> None:
    """Refuse (one line, nothing loaded) a missing ``transformers``, an unusable device or absent weights."""
    from .controlnet import check_weights_present, editor_device, require_transformers

    require_transformers()
    editor_device(config)
    check_weights_present(config)


def controlnet_first_frame(video: str | os.PathLike, config: ControlNetEditorConfig, size: int,
                           save_to: str | os.PathLike | None = None) -> torch.Tensor:
    """Edit the first frame of ``video`` with the ControlNet editor -> (3, size, size) in [-1, 1].

    The edit runs at ``config.resolution``; the result is resized to the animator's ``size`` and saved to
    ``save_to`` when given. The editor's weights are released before returning.
    """
    from ..media.image import frames_to_numpy, numpy_to_frames, resize_square, save_image
    from ..media.video import VideoReader
    from .controlnet import ControlNetEditor

    first = VideoReader(video).read([0])[0]  # (H, W, 3) uint8
    editor = ControlNetEditor(config)
    result = editor(numpy_to_frames(first))  # (3, R, R)
    del editor  # the SD weights are not needed for the animation
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    edited = numpy_to_frames(resize_square(frames_to_numpy(result.edited)[None], size)[0])  # (3, S, S)
    if save_to is not None:
        save_image(save_to, edited)
    return edited
