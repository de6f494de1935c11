"""The whole LEO: animator + cLMDM + start-code prior + (optional) cDDPM in one pipeline object.

Synthesis (LEO_METHOD.md, "Synthesis"): the start frame x₁ is encoded once; cLMDM samples the motion
codes α₁ … α_T chunk by chunk (autoregressively, any length); the frozen animator renders every frame
from x₁ and its code. With ``image=None`` LEO is fully unconditional: α₁ ~ p(α₁) (the prior) and x₁
from the cDDPM given α₁ (LEO_METHOD.md, "The start frame", option 2).

Frames are rendered *relative to α₁*: the latent of frame i is ``w(x₁) + Q(α_i − α₁) + Q E(x₁)``
(LIA's relative mode). For a real start image α₁ = E(x₁) and this is exactly ``w + Qα_i``; for a
cDDPM start frame it keeps frame 1 equal to x₁ even where E(x₁) and the sampled α₁ differ slightly.

Folder layout written by :meth:`LEOPipeline.save_pretrained` (no pickle; each component loads with
its class's ``from_pretrained`` alone)::

    pipeline.json      {"format": "leo-pipeline", "version": 1, "components": [...], "defaults": {...}}
    animator/          LatentImageAnimator   (config.json + diffusion_pytorch_model.safetensors)
    lmdm/              MotionDiffusion
    prior/             AlphaPrior            (optional: needed for unconditional generation)
    cddpm/             StartFrameDiffusion   (optional: needed for unconditional generation)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from ..diffusion.lmdm import AlphaPrior, MotionDiffusion
from ..diffusion.start_frame import StartFrameDiffusion
from ..errors import CheckpointError, InputError, NumericalError
from ..models.lia import Appearance, LatentImageAnimator
from ..models.loading import load_lia
from ..utils.atomic import atomic_folder

PIPELINE_FORMAT = "leo-pipeline"
COMPONENTS = {"animator": LatentImageAnimator, "lmdm": MotionDiffusion, "prior": AlphaPrior,
              "cddpm": StartFrameDiffusion}


@dataclass
class GenerationDefaults:
    """Sampling defaults stored with a pipeline (overridable per call)."""

    sampler: str = "ddim"
    steps: int = 50
    cddpm_steps: int = 50
    fps: float = 25.0


class LEOPipeline:
    """Bundle of the LEO components with ``__call__`` / :meth:`stream` generation.

    Args:
        animator: the frozen LIA animator (stage 1).
        lmdm: cLMDM (stage 2), trained on codes of this animator.
        prior: start-code prior p(α₁), or None (then only conditional generation from an image).
        cddpm: start-frame model x₁ | α₁, or None (then only conditional generation).
    """

    def __init__(self, animator: LatentImageAnimator, lmdm: MotionDiffusion, prior: AlphaPrior | None = None,
                 cddpm: StartFrameDiffusion | None = None, defaults: GenerationDefaults | None = None):
        self.animator, self.lmdm, self.prior, self.cddpm = animator, lmdm, prior, cddpm
        for module in self.components().values():
            module.eval()
        self.defaults = defaults or GenerationDefaults()
        self._check_dims()

    # ------------------------------------------------------------------ components
    def components(self) -> dict[str, torch.nn.Module]:
        parts = {"animator": self.animator, "lmdm": self.lmdm, "prior": self.prior, "cddpm": self.cddpm}
        return {name: module for name, module in parts.items() if module is not None}

    def _check_dims(self) -> None:
        M = self.animator.config.motion_dim
        for name, module in self.components().items():
            dim = module.config.motion_dim if name != "cddpm" else module.motion_dim
            if dim != M:
                raise CheckpointError(f"{name}: motion_dim {dim} does not match the animator's {M}")

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "LEOPipeline":
        for module in self.components().values():
            torch.nn.Module.to(module, device=device, dtype=dtype)
        return self

    def optimize_for_inference(self, compile: bool = False, channels_last: bool = False) -> "LEOPipeline":
        """The animator's rendering fast paths (:meth:`LatentImageAnimator.optimize_for_inference`); returns self."""
        self.animator.optimize_for_inference(compile=compile, channels_last=channels_last)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.animator.parameters()).device

    @property
    def size(self) -> int:
        return self.animator.config.size

    # ------------------------------------------------------------------ saving and loading
    def save_pretrained(self, folder: str | os.PathLike, overwrite: bool = False,
                        weights_dtype: torch.dtype | None = None) -> Path:
        """Write every component (safetensors + config.json) and ``pipeline.json``, atomically.

        ``weights_dtype`` (e.g. ``torch.float16``) stores the parameters in that dtype to halve the
        folder's size (buffers such as code statistics stay float32); loading casts back to float32.
        """
        with atomic_folder(folder, overwrite) as tmp:
            for name, module in self.components().items():
                if weights_dtype is not None:
                    module = _with_parameter_dtype(module, weights_dtype)
                module.save_pretrained(tmp / name, safe_serialization=True)
            meta = {"format": PIPELINE_FORMAT, "version": 1, "components": sorted(self.components()),
                    "defaults": asdict(self.defaults)}
            (tmp / "pipeline.json").write_text(json.dumps(meta, indent=1))
        return Path(folder)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> "LEOPipeline":
        """Load a folder written by :meth:`save_pretrained` (CheckpointError naming what is wrong)."""
        folder = Path(folder)
        meta_path = folder / "pipeline.json"
        if not meta_path.is_file():
            raise CheckpointError(f"{folder}: not a LEO pipeline folder (no pipeline.json)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{meta_path}: unreadable JSON ({exc})") from exc
        if meta.get("format") != PIPELINE_FORMAT:
            raise CheckpointError(f"{meta_path}: not a {PIPELINE_FORMAT} file")
        missing = {"animator", "lmdm"} - set(meta.get("components", []))
        if missing:
            raise CheckpointError(f"{folder}: pipeline lacks {', '.join(sorted(missing))}")
        parts = {name: load_component(name, folder / name) for name in meta["components"]}
        defaults = GenerationDefaults(**meta.get("defaults", {}))
        return cls(**parts, defaults=defaults).to(device)

    @classmethod
    def from_parts(cls, lia: str | os.PathLike, lmdm: str | os.PathLike, prior: str | os.PathLike | None = None,
                   cddpm: str | os.PathLike | None = None, defaults: GenerationDefaults | None = None) -> "LEOPipeline":
        """Build a pipeline from separate component paths (any LIA checkpoint, exported folders for the rest)."""
        paths = {"animator": lia, "lmdm": lmdm, "prior": prior, "cddpm": cddpm}
        parts = {name: load_component(name, path) for name, path in paths.items() if path}
        return cls(**parts, defaults=defaults)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def start(self, image: torch.Tensor | None, num_videos: int, generator: torch.Generator | None,
              cddpm_steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Start frames and codes: ``(x₁ (B, 3, S, S), α₁ (B, M))``, from an image or unconditionally."""
        if image is not None:
            x1 = image if image.ndim == 4 else image.unsqueeze(0)  # (b, 3, S, S)
            x1 = x1.to(self.device, torch.float32)
            if x1.shape[0] == 1:
                x1 = x1.expand(num_videos, -1, -1, -1)
            if x1.shape[-1] != self.size or x1.shape[-2] != self.size:
                raise InputError(f"image: expected {self.size}x{self.size}, got {tuple(x1.shape[-2:])}")
            return x1, self.animator.encode_motion(x1)  # α₁ = E(x₁)
        if self.prior is None or self.cddpm is None:
            absent = " and ".join(n for n in ("prior", "cddpm") if getattr(self, n) is None)
            raise InputError(f"unconditional generation needs a start-code prior and a cDDPM; this pipeline has no {absent}"
                             " (give a start image instead)")
        alpha1 = self.prior.sample(num_videos, self.defaults.sampler, self.defaults.steps, generator)  # (B, M)
        x1 = self.cddpm.sample(alpha1, self.defaults.sampler, self.defaults.cddpm_steps if cddpm_steps is None else cddpm_steps,
                               generator=generator)  # (B, 3, s, s)
        if x1.shape[-1] != self.size:
            x1 = F.interpolate(x1, size=(self.size, self.size), mode="bicubic", antialias=True, align_corners=False)
        return x1.clamp(-1, 1), alpha1

    @torch.no_grad()
    def stream(self, image: torch.Tensor | None = None, num_frames: int = 64, num_videos: int = 1,
               generator: torch.Generator | None = None, sampler: str | None = None, steps: int | None = None,
               motion: torch.Tensor | None = None, cddpm_steps: int | None = None) -> Iterator[torch.Tensor]:
        """Yield frame chunks ``(B, n, 3, S, S)`` in [-1, 1] until ``num_frames`` per video.

        image: start image (3, S, S) or (B, 3, S, S) in [-1, 1], or None (unconditional).
        motion: optional code sequence (T, M) to use instead of sampling (the same movement on
        another person); rendered relative to its own first code.
        """
        sampler = sampler or self.defaults.sampler
        steps = self.defaults.steps if steps is None else steps  # 0 is refused, never read as "the default"
        for name, value in (("steps", steps), ("cddpm_steps", cddpm_steps)):
            if value is not None and value < 1:
                raise InputError(f"{name} {value}: must be at least 1")
        x1, alpha1 = self.start(image, num_videos, generator, cddpm_steps)  # (B, 3, S, S), (B, M)
        appearances = [self._appearance(x1[b : b + 1]) for b in range(len(x1))]
        if motion is not None:
            chunks, anchor = self._given_motion(motion, num_frames, len(x1)), motion[:1].to(alpha1)
        else:
            chunks = self.lmdm.iter_chunks(alpha1, num_frames, sampler=sampler, steps=steps, generator=generator)
            anchor = alpha1
        for codes in chunks:  # (B, n, M)
            frames = torch.stack([
                self.animator.render(appearances[b], codes[b].to(self.device), start_motion=anchor[b % len(anchor)])
                for b in range(len(appearances))
            ])  # (B, n, 3, S, S)
            if not torch.isfinite(frames).all():
                raise NumericalError("generated frames contain NaN or inf (check the model weights)")
            yield frames.clamp(-1, 1)

    def __call__(self, image: torch.Tensor | None = None, num_frames: int = 64, num_videos: int = 1,
                 generator: torch.Generator | None = None, sampler: str | None = None, steps: int | None = None,
                 motion: torch.Tensor | None = None) -> torch.Tensor:
        """Generate videos ``(B, T, 3, S, S)`` in [-1, 1] (see :meth:`stream` for the arguments)."""
        return torch.cat(list(self.stream(image, num_frames, num_videos, generator, sampler, steps, motion)), dim=1)

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
    import copy

    copied = copy.deepcopy(module)
    for parameter in copied.parameters():
        if parameter.is_floating_point():
            parameter.data = parameter.data.to(dtype)
    return copied


def animator_path(path: str | os.PathLike | None) -> Path:
    """Where an animator is: a LEO pipeline folder's ``animator/`` (a folder with ``pipeline.json``),
    ``path`` itself otherwise (a LIA checkpoint or exported folder); None: the embedded demo model's."""
    if path is None:
        from .demo import demo_pipeline_dir

        path = demo_pipeline_dir()
    path = Path(path)
    return path / "animator" if (path / "pipeline.json").is_file() else path


def load_component(name: str, path: str | os.PathLike) -> torch.nn.Module:
    """Load one pipeline component from its folder (or, for the animator, any LIA checkpoint or pipeline)."""
    path = Path(path)
    if name == "animator":
        return load_lia(animator_path(path))
    cls = COMPONENTS[name]
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: not an exported {cls.__name__} folder (no config.json)")
    config = json.loads((path / "config.json").read_text())
    if config.get("_class_name", cls.__name__) != cls.__name__:
        raise CheckpointError(f"{path}: holds a {config.get('_class_name')}, expected {cls.__name__} for --{name}")
    try:
        return cls.from_pretrained(path).eval()
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot load {cls.__name__} ({str(exc).splitlines()[0][:160]})") from exc
