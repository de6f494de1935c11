"""The whole LEO: animator + motion (cLMDM) + start code prior + start frame model (cDDPM), as a diffusers pipeline.

Synthesis (LEO_METHOD.md, "Synthesis"): the start frame x₁ is encoded once; cLMDM samples the motion
codes α₁ … α_T chunk by chunk (autoregressively, any length); the frozen animator renders every frame
from x₁ and its code. With ``image=None`` LEO is fully unconditional: α₁ ~ p(α₁) (the start-code prior)
and x₁ from the cDDPM given α₁ (LEO_METHOD.md, "The start frame", option 2).

Frames are rendered *relative to α₁* by default: the latent of frame i is ``w(x₁) + Q(α_i − α₁) + Q E(x₁)``
(LIA's relative mode). For a real start image α₁ = E(x₁) and this is exactly ``w + Qα_i``; for a
cDDPM start frame it keeps frame 1 equal to x₁ even where E(x₁) and the sampled α₁ differ slightly.
``rendering="absolute"`` renders ``w(x₁) + Qα_i`` instead (LEO_METHOD.md's ``x_i = T(x₁, G(α_i))`` read
literally: the sampled codes themselves, also for frame 1); for a real start image both agree.

One name per part, the same for the attribute, the constructor argument, the ``model_index.json`` key and
the saved folder (:meth:`LEOPipeline.save_pretrained`, diffusers' layout, no pickle)::

    model_index.json  {"_class_name": "LEOPipeline", "animator": ["leo_video.models.lia", "LatentImageAnimator"], ...,
                       "defaults": {"sampler": ..., "steps": ..., "start_frame_steps": ..., "fps": ...}}
    animator/         LatentImageAnimator   (config.json + diffusion_pytorch_model.safetensors)
    motion/           MotionDiffusion       (cLMDM)
    start_code/       StartCodePrior        (optional: needed for unconditional generation)
    start_frame/      StartFrameDiffusion   (cDDPM; optional: needed for unconditional generation)

Folders of the first layout (``pipeline.json``; ``lmdm/``, ``prior/``, ``cddpm/``) still load, with a note.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline

from ..diffusion.motion import MotionDiffusion
from ..diffusion.start_code import StartCodePrior
from ..diffusion.start_frame import StartFrameDiffusion
from ..errors import CheckpointError, InputError, NumericalError
from ..models.lia import Appearance, LatentImageAnimator
from ..models import loading  # looked up at call time: a load_lia patched in tests is seen, never a stale copy
from ..utils.atomic import atomic_folder

logger = logging.getLogger(__name__)

PARTS = {"animator": LatentImageAnimator, "motion": MotionDiffusion, "start_code": StartCodePrior,
         "start_frame": StartFrameDiffusion}
# the first layout (pipeline.json) named the folders after the training stages
OLD_FOLDERS = {"animator": "animator", "lmdm": "motion", "prior": "start_code", "cddpm": "start_frame"}
OLD_CLASS_NAMES = {"start_code": ("AlphaPrior",)}  # config.json of folders saved before the rename


@dataclass
class GenerationDefaults:
    """Sampling defaults stored with a pipeline (overridable per call)."""

    sampler: str = "ddim"
    steps: int = 50
    start_frame_steps: int = 50
    fps: float = 25.0
    guidance_scale: float = 1.0  # the cDDPM's classifier-free guidance (1: the conditional model alone)
    rendering: str = "relative"  # unconditional frames relative to α₁ (see the module docstring) or "absolute"


class LEOPipeline(DiffusionPipeline):
    """The LEO components with ``__call__`` / :meth:`stream` generation; a :class:`diffusers.DiffusionPipeline`
    (``save_pretrained`` / ``from_pretrained`` / ``to`` / ``components`` / ``device`` / ``dtype``).

    Args:
        animator: the frozen LIA animator (stage 1).
        motion: cLMDM (stage 2), trained on codes of this animator.
        start_code: start-code prior p(α₁), or None (then only conditional generation from an image).
        start_frame: start-frame model x₁ | α₁ (cDDPM), or None (then only conditional generation).
        defaults: sampling defaults (a :class:`GenerationDefaults` or its dict), kept in ``model_index.json``.
    """

    _optional_components = ["start_code", "start_frame"]

    def __init__(self, animator: LatentImageAnimator, motion: MotionDiffusion, start_code: StartCodePrior | None = None,
                 start_frame: StartFrameDiffusion | None = None, defaults: GenerationDefaults | dict | None = None):
        super().__init__()
        self.register_modules(animator=animator, motion=motion, start_code=start_code, start_frame=start_frame)
        for module in self.parts().values():
            module.eval()
        defaults = defaults if isinstance(defaults, GenerationDefaults) else GenerationDefaults(**(defaults or {}))
        self.register_to_config(defaults=asdict(defaults))
        self._check_dims()

    # ------------------------------------------------------------------ components
    @property
    def defaults(self) -> GenerationDefaults:
        return GenerationDefaults(**self.config.defaults)

    def parts(self) -> dict[str, torch.nn.Module]:
        """The components present, by part name (``components`` minus the absent optional ones)."""
        return {name: module for name, module in self.components.items() if module is not None}

    def _check_dims(self) -> None:
        M = self.animator.config.motion_dim
        for name, module in self.parts().items():
            dim = module.motion_dim if isinstance(module, StartFrameDiffusion) else module.config.motion_dim
            if dim != M:
                raise CheckpointError(f"{name}: motion_dim {dim} does not match the animator's {M}")

    def optimize_for_inference(self, compile: bool = False, channels_last: bool = False) -> "LEOPipeline":
        """The animator's rendering fast paths (:meth:`LatentImageAnimator.optimize_for_inference`); returns self."""
        self.animator.optimize_for_inference(compile=compile, channels_last=channels_last)
        return self

    @property
    def size(self) -> int:
        return self.animator.config.size

    # ------------------------------------------------------------------ saving and loading
    def save_pretrained(self, save_directory: str | os.PathLike, overwrite: bool = False,
                        weights_dtype: torch.dtype | None = None, **kwargs) -> Path:
        """diffusers' ``save_pretrained`` (``model_index.json`` + one folder per part), written atomically.

        ``weights_dtype`` (e.g. ``torch.float16``) stores the parameters in that dtype to halve the
        folder's size (buffers such as code statistics stay float32); loading casts back to float32.
        """
        pipe = self
        if weights_dtype is not None:
            parts = {name: _with_parameter_dtype(module, weights_dtype) for name, module in self.parts().items()}
            pipe = LEOPipeline(**parts, defaults=self.defaults)
        with atomic_folder(save_directory, overwrite) as tmp:
            DiffusionPipeline.save_pretrained(pipe, tmp, safe_serialization=True, **kwargs)
        return Path(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, device: str | torch.device | None = None,
                        torch_dtype: torch.dtype | None = None) -> "LEOPipeline":
        """Load a local folder written by :meth:`save_pretrained` (or of the first layout); ``device`` is ``.to(device)``.

        Each part loads with its class's ``from_pretrained`` (the animator through
        :func:`~leo_video.models.loading.load_lia` and its checks), after ``model_index.json`` and each
        ``config.json`` were checked to name our classes: diffusers' own loader would load another class's
        weights with a warning. Problems are a one-line CheckpointError naming the file.
        """
        folder = Path(pretrained_model_name_or_path)
        if not (folder / cls.config_name).is_file() and (folder / "pipeline.json").is_file():
            pipe = _load_first_layout(cls, folder, torch_dtype)
        else:
            index = _read_model_index(folder)
            parts = {name: load_component(name, folder / name, torch_dtype) for name in PARTS if index.get(name, [None])[0]}
            pipe = cls(**parts, defaults=index.get("defaults"))
        return pipe.to(device) if device is not None else pipe

    @classmethod
    def from_parts(cls, animator: str | os.PathLike, motion: str | os.PathLike, start_code: str | os.PathLike | None = None,
                   start_frame: str | os.PathLike | None = None,
                   defaults: GenerationDefaults | None = None) -> "LEOPipeline":
        """Build a pipeline from separate component paths (any LIA checkpoint, exported folders for the rest)."""
        paths = {"animator": animator, "motion": motion, "start_code": start_code, "start_frame": start_frame}
        parts = {name: load_component(name, path) for name, path in paths.items() if path}
        return cls(**parts, defaults=defaults)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def start(self, image: torch.Tensor | None, num_videos: int, generator: torch.Generator | None,
              start_frame_steps: int | None = None, sampler: str | None = None, steps: int | None = None,
              guidance_scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Start frames and codes: ``(x₁ (B, 3, S, S), α₁ (B, M))``, from an image or unconditionally.

        Unconditionally, α₁ comes from the start-code prior with ``sampler`` / ``steps`` and x₁ from the
        cDDPM with ``sampler``, ``start_frame_steps`` (else ``steps``) and ``guidance_scale``; each
        argument left None takes the pipeline's default.
        """
        if image is not None:
            x1 = image if image.ndim == 4 else image.unsqueeze(0)  # (b, 3, S, S)
            x1 = x1.to(self.device, torch.float32)
            if x1.shape[0] == 1:
                x1 = x1.expand(num_videos, -1, -1, -1)
            if x1.shape[-1] != self.size or x1.shape[-2] != self.size:
                raise InputError(f"image: expected {self.size}x{self.size}, got {tuple(x1.shape[-2:])}")
            return x1, self.animator.encode_motion(x1)  # α₁ = E(x₁)
        if self.start_code is None or self.start_frame is None:
            absent = " and ".join(n for n in self._optional_components if getattr(self, n) is None)
            raise InputError(f"unconditional generation needs a start-code prior and a cDDPM; this pipeline has no {absent}"
                             " (give a start image instead)")
        defaults = self.defaults
        sampler = sampler or defaults.sampler
        frame_steps = start_frame_steps if start_frame_steps is not None else steps
        frame_steps = defaults.start_frame_steps if frame_steps is None else frame_steps
        scale = defaults.guidance_scale if guidance_scale is None else guidance_scale
        alpha1 = self.start_code.sample(num_videos, sampler, defaults.steps if steps is None else steps, generator)  # (B, M)
        x1 = self.start_frame.sample(alpha1, sampler, frame_steps, scale, generator=generator)  # (B, 3, s, s)
        if x1.shape[-1] != self.size:
            x1 = F.interpolate(x1, size=(self.size, self.size), mode="bicubic", antialias=True, align_corners=False)
        return x1.clamp(-1, 1), alpha1

    @torch.no_grad()
    def stream(self, image: torch.Tensor | None = None, num_frames: int = 64, num_videos: int = 1,
               generator: torch.Generator | None = None, sampler: str | None = None, steps: int | None = None,
               motion: torch.Tensor | None = None, start_frame_steps: int | None = None,
               guidance_scale: float | None = None, rendering: str | None = None) -> Iterator[torch.Tensor]:
        """Yield frame chunks ``(B, n, 3, S, S)`` in [-1, 1] until ``num_frames`` per video.

        image: start image (3, S, S) or (B, 3, S, S) in [-1, 1], or None (unconditional).
        sampler, steps: of every diffusion model (cLMDM, start-code prior, cDDPM; ``start_frame_steps``
        overrides ``steps`` for the cDDPM). guidance_scale: the cDDPM's classifier-free guidance.
        motion: optional code sequence (T, M) to use instead of sampling it with the motion model (the same
        movement on another person); rendered relative to its own first code.
        rendering: ``relative`` (to α₁) or ``absolute`` (see the module docstring); None: the default.
        """
        user_steps = steps
        sampler = sampler or self.defaults.sampler
        steps = self.defaults.steps if steps is None else steps  # 0 is refused, never read as "the default"
        rendering = rendering or self.defaults.rendering
        if rendering not in ("relative", "absolute"):
            raise InputError(f"rendering {rendering!r}: choose relative or absolute")
        for name, value in (("steps", steps), ("start_frame_steps", start_frame_steps)):
            if value is not None and value < 1:
                raise InputError(f"{name} {value}: must be at least 1")
        x1, alpha1 = self.start(image, num_videos, generator, start_frame_steps, sampler, user_steps,
                                guidance_scale)  # (B, 3, S, S), (B, M)
        appearances = [self._appearance(x1[b : b + 1]) for b in range(len(x1))]
        if motion is not None:
            chunks, anchor = self._given_motion(motion, num_frames, len(x1)), motion[:1].to(alpha1)
        else:
            chunks = self.motion.iter_chunks(alpha1, num_frames, sampler=sampler, steps=steps, generator=generator)
            anchor = alpha1
        for codes in chunks:  # (B, n, M)
            frames = torch.stack([
                self.animator.render(appearances[b], codes[b].to(self.device),
                                     start_motion=anchor[b % len(anchor)] if rendering == "relative" else None)
                for b in range(len(appearances))
            ])  # (B, n, 3, S, S)
            if not torch.isfinite(frames).all():
                raise NumericalError("generated frames contain NaN or inf (check the model weights)")
            yield frames.clamp(-1, 1)

    def __call__(self, image: torch.Tensor | None = None, num_frames: int = 64, num_videos: int = 1,
                 generator: torch.Generator | None = None, sampler: str | None = None, steps: int | None = None,
                 motion: torch.Tensor | None = None, start_frame_steps: int | None = None,
                 guidance_scale: float | None = None, rendering: str | None = None) -> torch.Tensor:
        """Generate videos ``(B, T, 3, S, S)`` in [-1, 1] (see :meth:`stream` for the arguments)."""
        chunks = self.stream(image, num_frames, num_videos, generator, sampler, steps, motion, start_frame_steps,
                             guidance_scale, rendering)
        return torch.cat(list(chunks), dim=1)

    def _appearance(self, x1: torch.Tensor) -> Appearance:
        return self.animator.encode_appearance(x1)  # batch 1: latent, feature pyramid, E(x₁)

    def _given_motion(self, motion: torch.Tensor, num_frames: int, batch: int, chunk: int = 64) -> Iterator[torch.Tensor]:
        if motion.ndim != 2 or motion.shape[1] != self.animator.config.motion_dim:
            raise InputError(f"motion: expected (T, {self.animator.config.motion_dim}), got {tuple(motion.shape)}")
        motion = motion[:num_frames]
        for i in range(0, len(motion), chunk):
            yield motion[i : i + chunk].unsqueeze(0).expand(batch, -1, -1)


def _with_parameter_dtype(module: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy of ``module`` whose floating-point parameters (not buffers) are cast to ``dtype``."""
    copied = copy.deepcopy(module)
    for parameter in copied.parameters():
        if parameter.is_floating_point():
            parameter.data = parameter.data.to(dtype)
    return copied


def animator_path(path: str | os.PathLike | None) -> Path:
    """Where an animator is: a LEO pipeline folder's ``animator/`` (a folder with ``model_index.json``, or
    ``pipeline.json`` of the first layout), ``path`` itself otherwise (a LIA checkpoint or exported folder);
    None: the embedded demo model's."""
    if path is None:
        from .demo import demo_pipeline_dir

        path = demo_pipeline_dir()
    path = Path(path)
    return path / "animator" if is_pipeline_folder(path) else path


def is_pipeline_folder(path: str | os.PathLike) -> bool:
    """A LEO pipeline folder: ``model_index.json``, or ``pipeline.json`` of the first layout."""
    return (Path(path) / LEOPipeline.config_name).is_file() or (Path(path) / "pipeline.json").is_file()


def load_component(name: str, path: str | os.PathLike, torch_dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Load one part (a name of :data:`PARTS`) from its folder (or, for the animator, any LIA checkpoint or
    pipeline folder), in ``torch_dtype`` (default float32, whatever dtype the weights were stored in)."""
    path = Path(path)
    if name == "animator":
        return loading.load_lia(animator_path(path), dtype=torch_dtype or torch.float32)
    _check_part_folder(name, path)
    cls = PARTS[name]
    try:
        return cls.from_pretrained(path, torch_dtype=torch_dtype).eval()
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot load {cls.__name__} ({str(exc).splitlines()[0][:160]})") from exc


def _check_part_folder(name: str, path: Path) -> None:
    """An exported folder whose config.json names the part's class (diffusers would load any class's weights)."""
    cls = PARTS[name]
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: not an exported {cls.__name__} folder (no config.json)")
    try:
        config = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / 'config.json'}: unreadable JSON ({exc})") from exc
    if config.get("_class_name", cls.__name__) not in (cls.__name__, *OLD_CLASS_NAMES.get(name, ())):
        raise CheckpointError(f"{path}: holds a {config.get('_class_name')}, expected {cls.__name__} for the {name} part")


def _read_model_index(folder: Path) -> dict:
    """``model_index.json``, checked: every part present is our class for that part (nothing else is imported)."""
    index_path = folder / LEOPipeline.config_name
    if not index_path.is_file():
        raise CheckpointError(f"{folder}: not a LEO pipeline folder (no {LEOPipeline.config_name})")
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{index_path}: unreadable JSON ({exc})") from exc
    if index.get("_class_name") != LEOPipeline.__name__:
        raise CheckpointError(f"{index_path}: holds a {index.get('_class_name')}, not a {LEOPipeline.__name__}")
    for name, cls in PARTS.items():
        entry = index.get(name)
        if entry in (None, [None, None]) and name in LEOPipeline._optional_components:
            continue
        if entry != [cls.__module__, cls.__name__]:
            raise CheckpointError(f"{index_path}: {name} must be {cls.__module__}.{cls.__name__}, got {entry}")
    return index


def _load_first_layout(cls: type[LEOPipeline], folder: Path, torch_dtype: torch.dtype | None) -> LEOPipeline:
    """A folder of the first layout: ``pipeline.json`` with parts in ``animator/``, ``lmdm/``, ``prior/``, ``cddpm/``."""
    meta_path = folder / "pipeline.json"
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: unreadable JSON ({exc})") from exc
    if meta.get("format") != "leo-pipeline":
        raise CheckpointError(f"{meta_path}: not a leo-pipeline file")
    missing = {"animator", "lmdm"} - set(meta.get("components", []))
    if missing:
        raise CheckpointError(f"{folder}: pipeline lacks {', '.join(sorted(missing))}")
    logger.warning("%s: a pipeline of the first layout (pipeline.json); save_pretrained writes the current one", folder)
    parts = {OLD_FOLDERS[old]: load_component(OLD_FOLDERS[old], folder / old, torch_dtype) for old in meta["components"]}
    defaults = dict(meta.get("defaults", {}))
    if "cddpm_steps" in defaults:
        defaults["start_frame_steps"] = defaults.pop("cddpm_steps")
    return cls(**parts, defaults=GenerationDefaults(**defaults))
