"""Edit a video's first frame from a text prompt with a Canny ControlNet (LEO_METHOD.md, "Video editing").

LEO edits a video by editing its first frame once and re-rendering the original motion on it; the
paper edits that frame with a ControlNet conditioned on the frame's structure. Here the structure is
the frame's Canny edge map (:mod:`.canny`) and the editor is diffusers'
``StableDiffusionControlNetImg2ImgPipeline``, loaded with ``local_files_only=True`` from local folders
or the Hugging Face cache: nothing is downloaded at run time.

Why image-to-image and not text-to-image: the motion codes are applied *relative to the first frame*,
so the edited frame must keep the original pose pixel for pixel. The edge map pins the outline, and
starting from the noised original (``strength`` < 1) also keeps what the prompt does not change —
colours, background, proportions, the person's identity. ``strength=1`` gives plain ControlNet
text-to-image.

``transformers`` (the CLIP text encoder) is an optional dependency, ``pip install 'leo-video[edit]'``;
nothing in this module imports it or the diffusers pipelines before an editor is built.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from ..errors import CheckpointError, InputError, LeoError, MissingWeightsError
from ..media.image import frames_to_numpy, numpy_to_frames, resize_center_crop
from ..utils.device import resolve_device, resolve_dtype
from ..utils.progress import progress_enabled
from .canny import canny_edges
from .config import DEFAULT_BASE_MODEL, DEFAULT_CONTROLNET, ControlNetEditorConfig

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # owner/name

__all__ = [
    "ControlNetEditorConfig",
    "ControlNetEditor",
    "ControlNetEdit",
    "MissingDependencyError",
    "load_controlnet_img2img",
    "check_weights_present",
    "editor_device",
    "require_transformers",
]


class MissingDependencyError(LeoError):
    """An optional Python package that a feature needs is not installed."""


@dataclass
class ControlNetEdit:
    """One edited frame: ``edited`` (3, R, R) float in [-1, 1] and the ``edges`` (R, R) bool it kept."""

    edited: torch.Tensor
    edges: torch.Tensor


def require_transformers() -> None:
    """Raise :class:`MissingDependencyError` when the optional ``transformers`` package is absent."""
    if importlib.util.find_spec("transformers") is None:
        raise MissingDependencyError(
            "--editor controlnet: needs the transformers package (the CLIP text encoder); "
            "install it with pip install 'leo-video[edit]'"
        )


@dataclass(frozen=True)
class _Weights:
    """One pretrained part the editor needs: what it is, the file its folder always has, its usual Hub id."""

    what: str
    index_file: str  # the file a diffusers folder of this part always has
    default_id: str


BASE = _Weights("Stable Diffusion 1.5-compatible base model", "model_index.json", DEFAULT_BASE_MODEL)
CONTROLNET = _Weights("canny ControlNet", "config.json", DEFAULT_CONTROLNET)


def _is_local(name_or_path: str, weights: _Weights) -> bool:
    """True for an existing folder, or a Hub id whose index file is in the local Hugging Face cache."""
    if Path(name_or_path).expanduser().exists():
        return True
    if not _HUB_ID.match(name_or_path):
        return False
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name_or_path, weights.index_file), str)


def _missing(name_or_path: str, weights: _Weights, why: str = "no such folder, not in the Hugging Face cache") -> str:
    """One clause naming a missing model and the command that fetches it."""
    target = "DIR" if _HUB_ID.match(name_or_path) else name_or_path  # a clear path is its own target
    return (f"{name_or_path}: {weights.what} not found ({why}); get it with "
            f"hf download {weights.default_id} --local-dir {target}")


def editor_device(config: ControlNetEditorConfig) -> torch.device:
    """The device the editor runs on; fp16 on the CPU is refused (diffusers does not support it there)."""
    device = resolve_device(config.device)
    if resolve_dtype(config.dtype) == torch.float16 and device.type == "cpu":
        raise InputError("--dtype fp16: the ControlNet editor needs a GPU for fp16; use fp32 or bf16 on the CPU")
    return device


def check_weights_present(config: ControlNetEditorConfig) -> None:
    """Raise one :class:`MissingWeightsError` naming every missing model, before anything is loaded."""
    missing = [_missing(name, weights) for name, weights in ((config.base_model, BASE), (config.controlnet, CONTROLNET))
               if not _is_local(name, weights)]
    if missing:
        raise MissingWeightsError("; ".join(missing) + " (huggingface-cli download on older huggingface_hub)")


def _from_pretrained(cls: Any, name_or_path: str, weights: _Weights, **kwargs: Any) -> Any:
    """``cls.from_pretrained(name_or_path, local_files_only=True)`` with one-line errors naming the input.

    A folder that does not load is a :class:`CheckpointError`; a cached Hub id that does not load is
    incompletely downloaded (:class:`MissingWeightsError`).
    """
    path = Path(name_or_path).expanduser()
    try:
        return cls.from_pretrained(str(path) if path.exists() else name_or_path, local_files_only=True, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if path.exists():
            raise CheckpointError(f"{name_or_path}: not a diffusers {weights.what} folder ({reason})") from exc
        why = f"incomplete in the Hugging Face cache: {reason}"
        raise MissingWeightsError(_missing(name_or_path, weights, why)) from exc


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide diffusers' and transformers' loading bars and notices (e.g. transformers' "CLIPImageProcessor
    requires torchvision ... falling back" on import) around our one-line errors; errors still show."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    levels = diffusers_logging.get_verbosity(), transformers_logging.get_verbosity()
    for lib in (diffusers_logging, transformers_logging):
        lib.disable_progress_bar()
        lib.set_verbosity_error()
    try:
        yield
    finally:
        for lib, level in zip((diffusers_logging, transformers_logging), levels):
            lib.enable_progress_bar()
            lib.set_verbosity(level)


def load_controlnet_img2img(config: ControlNetEditorConfig, device: torch.device) -> Any:
    """Load the ControlNet and the SD 1.5-compatible base as one ``StableDiffusionControlNetImg2ImgPipeline``.

    Weights load in ``config.dtype`` and move to ``device``. The pipeline's own progress bar follows
    ``LEO_PROGRESS`` like the rest of the CLI.
    """
    require_transformers()
    check_weights_present(config)
    with _quiet_loading():
        from diffusers import ControlNetModel, StableDiffusionControlNetImg2ImgPipeline
        from diffusers.utils import deprecation_utils

        # diffusers renamed `torch_dtype` to `dtype` (the old name warns); older versions know only the old one
        dtype_key = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
        extra = {dtype_key: resolve_dtype(config.dtype)}
        if not config.safety_checker:
            extra.update(safety_checker=None, requires_safety_checker=False)
        controlnet = _from_pretrained(ControlNetModel, config.controlnet, CONTROLNET, **{dtype_key: extra[dtype_key]})
        pipe = _from_pretrained(StableDiffusionControlNetImg2ImgPipeline, config.base_model, BASE,
                                controlnet=controlnet, **extra)
    pipe.set_progress_bar_config(disable=not progress_enabled(), desc="edit first frame")
    return pipe.to(device)


class ControlNetEditor:
    """Text-prompted first-frame editor: Canny edges of the frame -> ControlNet img2img -> edited frame.

    ``ControlNetEditor(config)`` loads the weights (see :func:`load_controlnet_img2img`); pass
    ``pipeline`` to reuse one already loaded. Call it on a frame (3, H, W) in [-1, 1] to get a
    :class:`ControlNetEdit` at ``config.resolution``.
    """

    def __init__(self, config: ControlNetEditorConfig, pipeline: Any | None = None) -> None:
        self.config = config
        self.device = editor_device(config)
        self.pipeline = pipeline if pipeline is not None else load_controlnet_img2img(config, self.device)

    def prepare(self, frame: torch.Tensor) -> torch.Tensor:
        """Centre-crop and resize a frame (3, H, W) in [-1, 1] to the editor's (3, R, R)."""
        pixels = resize_center_crop(frames_to_numpy(frame), self.config.resolution)  # (R, R, 3) uint8
        return numpy_to_frames(pixels)  # (3, R, R)

    def control_image(self, frame: torch.Tensor) -> torch.Tensor:
        """The structure condition of a prepared frame (3, R, R): its Canny edge map (R, R) bool."""
        return canny_edges(frame, self.config.canny_low, self.config.canny_high)

    @torch.no_grad()
    def __call__(self, frame: torch.Tensor) -> ControlNetEdit:
        """Edit ``frame`` (3, H, W) in [-1, 1] (any size; centre-cropped) -> edited (3, R, R) and its edges."""
        cfg = self.config
        original = self.prepare(frame)  # (3, R, R)
        edges = self.control_image(original)  # (R, R)
        control = edges.float().expand(3, -1, -1)[None]  # (1, 3, R, R) in [0, 1], white edges on black
        output = self.pipeline(
            prompt=cfg.prompt,
            negative_prompt=cfg.negative_prompt or None,
            image=((original + 1) / 2)[None],  # (1, 3, R, R) in [0, 1], diffusers' tensor convention
            control_image=control,
            height=cfg.resolution,
            width=cfg.resolution,
            strength=cfg.strength,
            num_inference_steps=cfg.steps,
            guidance_scale=cfg.guidance_scale,
            controlnet_conditioning_scale=cfg.controlnet_conditioning_scale,
            # a CPU generator: the same seed gives the same edit on every device
            generator=torch.Generator("cpu").manual_seed(cfg.seed),
            output_type="pt",
        )
        if output.nsfw_content_detected and any(output.nsfw_content_detected):
            raise InputError(f"--prompt {cfg.prompt!r}: the base model's safety checker blanked the edited frame; "
                           "change the prompt")
        edited = output.images[0].float().cpu() * 2 - 1  # (3, R, R) in [-1, 1]
        return ControlNetEdit(edited=edited.clamp(-1, 1), edges=edges)
