"""What each tab of the web UI does, as plain functions (no Gradio here; :mod:`.app` wires them up).

Every handler takes an :class:`AppContext` (models, limits, the app's folders), validates its
uploads with :mod:`.validation`, reuses the library's pipelines (``pipelines.generate.write_generated`` for
Generate, ``pipelines.transfer.write_transfer`` for Animate and Edit, LIA's linear manipulation for Motion)
and writes its outputs into the app's own temporary folder. User mistakes raise a
:class:`~leo_video.errors.LeoError` with a one-line message, which the app shows in the page.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..diffusion.schedulers import SAMPLERS
from ..errors import InputError
from ..media.grid import contact_sheet
from ..media.image import frames_to_numpy, load_image, save_image
from ..media.video import VideoWriter
from ..models.lia import Appearance, LatentImageAnimator
from ..pipelines.generate import GenerateOptions, write_generated
from ..pipelines.leo import LEOPipeline
from ..pipelines.sources import PipelineSources, load_leo_pipeline
from .validation import UploadLimits, check_image, check_video

# progress(fraction in [0, 1], description): the app passes Gradio's progress tracker.
ProgressFn = Callable[[float, str], None]
STRIP_FRAMES = 8  # frames in the strip under the generated video
MAX_STEPS = 200  # denoising steps a web user may ask for
MAX_GUIDANCE = 20.0  # classifier-free guidance scale a web user may ask for
MOTION_RANGE = 3.0  # slider range of each motion magnitude, as `leo-video manipulate`'s default
BATCH_FRAMES = 16  # frames encoded and rendered per batch in Animate and Edit
OUTPUT_MAX_AGE_S = 3600  # outputs are kept an hour (Gradio's cache copy: same, via Blocks(delete_cache))


@dataclass
class UIModels:
    """The models behind the app: a whole LEO pipeline, or a LIA animator alone (no Generate tab)."""

    animator: LatentImageAnimator
    pipeline: LEOPipeline | None = None
    name: str = "model"
    is_demo: bool = False  # the embedded demo model: a still unlike its synthetic people gets a note

    @classmethod
    def from_pipeline(cls, pipeline: LEOPipeline, name: str = "pipeline") -> "UIModels":
        return cls(pipeline.animator, pipeline, name)

    @classmethod
    def load(cls, sources: PipelineSources, device: torch.device) -> "UIModels":
        """A pipeline folder, an animator alone (Animate, Edit and Motion), parts, or the embedded demo model."""
        from ..models.loading import load_lia
        from ..pipelines.demo import is_demo_model

        sources.check(animator_alone=True)
        if sources.parts == ["animator"]:
            return cls(load_lia(sources.animator, device=device), name=str(sources.animator))
        models = cls.from_pipeline(load_leo_pipeline(sources, device), name=sources.name())
        # the embedded demo model (MissingWeightsError when the package ships without it): real photos get a note
        models.is_demo = not sources.parts_given and (sources.pipeline is None or is_demo_model(sources.pipeline))
        return models

    @property
    def can_generate(self) -> bool:
        return self.pipeline is not None

    @property
    def can_generate_unconditional(self) -> bool:
        return self.pipeline is not None and self.pipeline.start_code is not None and self.pipeline.start_frame is not None

    @property
    def motion_dim(self) -> int:
        return self.animator.config.motion_dim

    @property
    def size(self) -> int:
        return self.animator.config.size

    @property
    def fps(self) -> float:
        return self.pipeline.defaults.fps if self.pipeline is not None else 25.0


@dataclass
class AppContext:
    """Everything a handler needs: the models, the upload limits and the folders it may touch.

    ``workdir`` is the app's temporary folder (outputs, example stills); ``upload_dirs`` are the
    folders uploads arrive in (Gradio's upload folder). Handlers read only inside these.
    """

    models: UIModels
    workdir: Path
    limits: UploadLimits = field(default_factory=UploadLimits)
    upload_dirs: tuple[Path, ...] = ()
    dtype: torch.dtype = torch.float32
    _motion_cache: OrderedDict = field(default_factory=OrderedDict, repr=False)

    @property
    def roots(self) -> tuple[Path, ...]:
        return (self.workdir, *self.upload_dirs)

    def new_output(self, kind: str, suffix: str) -> Path:
        """A fresh file name in the app's folder (never derived from user input).

        Outputs older than ``OUTPUT_MAX_AGE_S`` are deleted first: Gradio has served its own copy by
        then, and a long-running server must not fill the disk.
        """
        folder = self.workdir / "outputs"
        folder.mkdir(parents=True, exist_ok=True)
        too_old = time.time() - OUTPUT_MAX_AGE_S
        for old in folder.iterdir():
            if old.stat().st_mtime < too_old:
                old.unlink(missing_ok=True)
        return folder / f"{kind}-{uuid.uuid4().hex[:12]}{suffix}"


def _int_in_range(value: float | int | None, low: int, high: int, what: str) -> int:
    if value is None or not low <= float(value) <= high:
        raise InputError(f"{what}: {value} is outside {low}..{high}")
    return int(value)


def _no_progress(fraction: float, desc: str) -> None:
    pass


def _no_note(text: str) -> None:
    pass


def _note_if_unlike_demo(ctx: AppContext, image: torch.Tensor, label: str, note: Callable[[str], None]) -> None:
    """``note`` (the page shows it as a warning) when the demo model meets a still (3, S, S) unlike its people."""
    from ..pipelines.demo import unlike_demo_note

    if ctx.models.is_demo and (text := unlike_demo_note(ctx.models.animator, image, label)):
        note(text)


# ----------------------------------------------------------------------------- Generate


@dataclass
class GenerateResult:
    """Paths of a generated video (mp4) and its strip of evenly spaced frames (png)."""

    video: Path
    strip: Path


def generate(ctx: AppContext, image: str | None, frames: int, seed: int, sampler: str, steps: int,
             guidance_scale: float | None = None, progress: ProgressFn = _no_progress,
             note: Callable[[str], None] = _no_note) -> GenerateResult:
    """LEO generation (LEOPipeline.stream): from an uploaded start image, or unconditionally when ``image`` is None.

    Writes a ``frames``-frame mp4 (S x S) and a strip of 8 of its frames; ``seed`` fixes the motion.
    ``guidance_scale`` is the cDDPM's classifier-free guidance (unconditional only; None: the pipeline's).
    """
    pipe = ctx.models.pipeline
    if pipe is None:
        raise InputError("generate: this app was started with a LIA animator only; start it with --pipeline DIR")
    frames = _int_in_range(frames, 1, ctx.limits.max_generate_frames, "frames")
    steps = _int_in_range(steps, 1, MAX_STEPS, "steps")
    seed = _int_in_range(seed, 0, 2**31 - 1, "seed")
    if sampler not in SAMPLERS:
        raise InputError(f"sampler: {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if guidance_scale is not None and not 0.0 <= float(guidance_scale) <= MAX_GUIDANCE:
        raise InputError(f"guidance scale: {guidance_scale}; must be in [0, {MAX_GUIDANCE:g}]")
    if image is None and not ctx.models.can_generate_unconditional:
        raise InputError("start image: missing (this model has no cDDPM for unconditional generation; upload an image)")
    start = None if image is None else load_image(check_image(image, "start image", ctx.limits, ctx.roots), pipe.size)
    if start is not None:
        _note_if_unlike_demo(ctx, start, "start image", note)
    out, pixels = ctx.new_output("generate", ".mp4"), []

    def keep(chunk: torch.Tensor) -> None:  # chunk (1, n, 3, S, S)
        pixels.append(frames_to_numpy(chunk[0]))  # (n, S, S, 3) uint8: 1/4 of the float memory
        done = sum(len(p) for p in pixels)
        progress(done / frames, f"frame {done}/{frames}")

    progress(0.0, "sampling motion")
    options = GenerateOptions(start, frames, 1, seed, sampler, steps, fps=pipe.defaults.fps, dtype=ctx.dtype,
                              guidance_scale=guidance_scale)
    write_generated(pipe, [out], options, on_chunk=keep, show_progress=False)  # the same loop as `leo-video generate`
    strip = save_image(ctx.new_output("strip", ".png"), contact_sheet([np.concatenate(pixels)], STRIP_FRAMES))
    return GenerateResult(out, strip)


# ----------------------------------------------------------------------------- Animate and Edit


def _transfer(ctx: AppContext, image: str | None, image_label: str, video: str | None, video_label: str,
              kind: str, note: Callable[[str], None] = _no_note) -> Path:
    """Relative LIA transfer of the video's motion onto the image, written as image | video | result."""
    from ..pipelines.animate import AnimateOptions
    from ..pipelines.transfer import write_transfer  # the same streaming transfer as `leo-video animate/edit`

    image_path = check_image(image, image_label, ctx.limits, ctx.roots)
    info = check_video(video, video_label, ctx.limits, ctx.roots)
    animator = ctx.models.animator
    source = load_image(image_path, size=ctx.models.size)  # (3, S, S)
    _note_if_unlike_demo(ctx, source, image_label, note)
    out = ctx.new_output(kind, ".mp4")
    options = AnimateOptions(relative=True, batch_frames=BATCH_FRAMES, dtype=ctx.dtype)
    write_transfer(animator, source, info.path, out, options, side_by_side=True,
                   max_frames=ctx.limits.max_video_frames, label=kind)
    return out


def animate(ctx: AppContext, source: str | None, driving: str | None, note: Callable[[str], None] = _no_note) -> Path:
    """Motion transfer (LIA): the driving video's motion on the source image, side by side; returns the mp4."""
    return _transfer(ctx, source, "source image", driving, "driving video", "animate", note)


def edit(ctx: AppContext, video: str | None, edited_first_frame: str | None,
         note: Callable[[str], None] = _no_note) -> Path:
    """Video editing (LEO_METHOD.md, "Video editing"): the video's motion re-rendered on its edited first frame.

    Returns an mp4 of edited first frame | original | edited video.
    """
    return _transfer(ctx, edited_first_frame, "edited first frame", video, "video", "edit", note)


# ----------------------------------------------------------------------------- Motion


def _encoded_source(ctx: AppContext, image: str, note: Callable[[str], None] = _no_note) -> Appearance:
    """The source's Appearance, cached per upload: the sliders re-render without re-encoding (and a demo-model
    note is given once per upload)."""
    path = check_image(image, "source image", ctx.limits, ctx.roots)
    key = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in ctx._motion_cache:
        animator = ctx.models.animator
        source = load_image(path, size=ctx.models.size).unsqueeze(0)  # (1, 3, S, S)
        _note_if_unlike_demo(ctx, source[0], "source image", note)
        with torch.no_grad():
            ctx._motion_cache[key] = animator.encode_appearance(source.to(animator.device))
        while len(ctx._motion_cache) > 4:
            ctx._motion_cache.popitem(last=False)
    ctx._motion_cache.move_to_end(key)
    return ctx._motion_cache[key]


def motion_frame(ctx: AppContext, image: str | None, magnitudes: Sequence[float],
                 note: Callable[[str], None] = _no_note) -> np.ndarray:
    """LIA's linear manipulation with every direction at once: renders codes α_source + Σ_k v_k e_k.

    ``magnitudes`` (M,) are the slider values v_k. With one non-zero v_k this is exactly
    ``pipelines.animate.manipulation_codes`` (one direction); D is linear, so several directions add
    up. Returns the frame as uint8 (S, S, 3); all zeros gives the source's own reconstruction.
    """
    if image is None:
        raise InputError("source image: missing (upload an image)")
    M = ctx.models.motion_dim
    if len(magnitudes) != M:
        raise InputError(f"motion magnitudes: expected {M} values, got {len(magnitudes)}")
    values = torch.tensor([float(v) for v in magnitudes])  # (M,)
    if not torch.isfinite(values).all() or values.abs().max() > MOTION_RANGE:
        raise InputError(f"motion magnitudes: each must be within ±{MOTION_RANGE:g}")
    appearance = _encoded_source(ctx, image, note)
    codes = appearance.motion + values.to(appearance.motion)  # (1, M)
    with torch.no_grad():
        frame = ctx.models.animator.render(appearance, codes)  # (1, 3, S, S)
    return frames_to_numpy(frame[0].float())  # (S, S, 3)


# ----------------------------------------------------------------------------- examples


@dataclass
class Examples:
    """Inputs to pick in the page: unseen synthetic people (the demo model's domain), as files."""

    stills: list[Path]  # Generate and Motion: start images
    animate: tuple[Path, Path]  # (source image, driving video of another person)
    edit: tuple[Path, Path]  # (a video, its first frame with new clothes)


def write_examples(ctx: AppContext, num_frames: int = 48) -> Examples:
    """Render the demo's inputs (``pipelines.demo.make_demo_inputs``) at the model's size into the app's folder."""
    from ..data.synthetic import render_synthetic_video
    from ..pipelines.demo import DEMO_FPS, DEMO_INPUT_SEED, make_demo_inputs

    folder, S = ctx.workdir / "examples", ctx.models.size
    inputs = make_demo_inputs(S, num_frames)
    others = [render_synthetic_video(DEMO_INPUT_SEED, 1, S, index=i)[0] for i in (3, 4)]  # (S, S, 3) each
    stills = [save_image(folder / f"person_{k}.png", still) for k, still in enumerate([inputs.still, *others])]
    with VideoWriter(folder / "driving.mp4", fps=DEMO_FPS) as writer:
        writer.write(inputs.driving)
    with VideoWriter(folder / "original.mp4", fps=DEMO_FPS) as writer:
        writer.write(inputs.original)
    edited = save_image(folder / "edited_first_frame.png", inputs.edited_truth[0])
    return Examples(stills, (stills[0], folder / "driving.mp4"), (folder / "original.mp4", edited))
