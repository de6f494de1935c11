"""The embedded default: a small trained LEO shipped inside the package, and the demo it runs.

The demo pipeline (animator, cLMDM, start-code prior, cDDPM at 64x64, fp16 weights, about 13 MB) was
trained on the synthetic humans of :mod:`leo_video.data.synthetic` by ``scripts/train_demo.sh`` with
the configs in ``configs/demo/`` (the shipped weights' exact history: ``configs/demo/README.md``); anyone
can retrain it with that script. It is what ``leo-video demo``, ``leo-video generate`` without
``--pipeline`` and ``leo-video ui`` load when given no model.

:func:`write_demo` renders every use of LEO on people the model never saw (synthetic seeds disjoint
from the training set's): unconditional videos, videos from a still, an infinite-length video, motion
transfer from a driving video and a video edited through its first frame, plus a contact sheet.
"""

from __future__ import annotations

import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import MissingWeightsError
from .demo_settings import DemoSettings

DEMO_PIPELINE_PACKAGE = "leo_video.assets"
DEMO_PIPELINE_NAME = "demo_pipeline"
DEMO_INPUT_SEED = 9001  # synthetic people for the demo inputs; training used seed 0 (configs/demo/README.md)
DEMO_FPS = 15.0


def demo_pipeline_dir() -> Path:
    """The packaged demo pipeline folder (``leo_video/assets/demo_pipeline``).

    Raises MissingWeightsError when the package was installed without it.
    """
    folder = Path(str(resources.files(DEMO_PIPELINE_PACKAGE).joinpath(DEMO_PIPELINE_NAME)))
    if not (folder / "model_index.json").is_file():
        raise MissingWeightsError(
            f"{folder}: the embedded demo model is missing from this installation; reinstall leo-video from "
            "its repository, or train it with scripts/train_demo.sh and pass --pipeline")
    return folder


def load_demo_pipeline(device: str | torch.device = "cpu"):
    """The embedded demo :class:`~leo_video.pipelines.leo.LEOPipeline` on ``device`` (float32)."""
    from .leo import LEOPipeline

    return LEOPipeline.from_pretrained(demo_pipeline_dir(), device=device)


# ------------------------------------------------------------------------------------------ inputs


@dataclasses.dataclass
class DemoInputs:
    """Unseen synthetic people for the demo, all ``uint8 (T, S, S, 3)`` or ``(S, S, 3)``.

    still: a start image; driving: another person's motion for transfer; original / edited_truth: one
    person's video and the same video with the clothing recoloured (its frame 0 is the edited first frame).
    """

    still: np.ndarray
    driving: np.ndarray
    original: np.ndarray
    edited_truth: np.ndarray


def make_demo_inputs(size: int, num_frames: int, seed: int = DEMO_INPUT_SEED) -> DemoInputs:
    """Render the demo's inputs from the synthetic-humans generator (deterministic in ``seed``)."""
    from ..data.synthetic import SyntheticHumanConfig, render_synthetic_video, sample_person
    from ..data.synthetic_render import render_person

    config = SyntheticHumanConfig(size=size, frames=num_frames)
    still = render_synthetic_video(seed, 1, size, index=0)[0]
    driving = render_synthetic_video(seed, num_frames, size, index=1)
    person = sample_person(np.random.default_rng([seed, 2]), config)
    original = render_person(person, num_frames, size, config.fps)
    # The edit a user would make in an image editor: new clothes, same pose, same everything else.
    look = dataclasses.replace(person.look, shirt=(0.85, 0.15, 0.12), stripe=(0.95, 0.85, 0.2),
                               pattern="hstripes", pants=(0.12, 0.14, 0.35))
    edited_truth = render_person(dataclasses.replace(person, look=look), num_frames, size, config.fps)
    return DemoInputs(still=still, driving=driving, original=original, edited_truth=edited_truth)


# ------------------------------------------------------------------------------------------ the demo


def write_demo(pipe, out: str | os.PathLike, settings: DemoSettings = DemoSettings(),
               report: Callable[[str], None] = print, show_progress: bool = False) -> dict[str, Path]:
    """Generate the demo videos and contact sheet into ``out``; returns ``{label: path}``.

    Writes ``unconditional.mp4`` (``num_videos`` videos from nothing, in a grid), ``conditional.mp4``
    (one still, two seeds: different motions), ``infinite.mp4`` (``infinite_frames`` frames
    from the still, autoregressively), ``transfer.mp4`` (driving | source | result), ``edit.mp4``
    (original | edited), ``demo.gif`` and ``contact_sheet.png``. ``show_progress``: a tqdm bar on stderr for
    the infinite video (written by :func:`~leo_video.pipelines.generate.write_generated`, like ``generate``).
    """
    from ..media.grid import caption_video, make_grid, save_contact_sheet
    from ..media.image import from_uint8
    from ..media.video import write_video
    from .animate import AnimateOptions, transfer_motion
    from .generate import GenerateOptions, write_generated

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n, size = settings.num_frames, pipe.size
    inputs = make_demo_inputs(size, n)
    as_frames = lambda video: from_uint8(torch.from_numpy(video)).permute(0, 3, 1, 2)  # (T, 3, S, S)
    sample = dict(sampler=settings.sampler, steps=settings.steps)
    generator = lambda offset=0: torch.Generator().manual_seed(settings.seed + offset)
    paths: dict[str, Path] = {}

    report("generating unconditional videos (start code from the start-code prior, start frame from the cDDPM) ...")
    uncond = pipe(None, n, settings.num_videos, generator(), **sample)  # (B, T, 3, S, S)
    paths["unconditional"] = write_video(out / "unconditional.mp4", make_grid(list(uncond), ncols=2), fps=DEMO_FPS)

    report("generating videos from a still ...")
    still = as_frames(inputs.still[None])[0]  # (3, S, S)
    cond = pipe(still, n, 2, generator(1), **sample)
    paths["conditional"] = write_video(out / "conditional.mp4", make_grid(list(cond), ncols=2), fps=DEMO_FPS)

    report(f"generating an infinite-length video ({settings.infinite_frames} frames) ...")
    infinite = GenerateOptions(image=still, num_frames=settings.infinite_frames, seed=settings.seed + 2,
                               fps=DEMO_FPS, **sample)
    paths["infinite"] = out / "infinite.mp4"
    write_generated(pipe, [paths["infinite"]], infinite, show_progress=show_progress)  # streamed: memory flat

    report("transferring a driving video's motion to the still ...")
    options = AnimateOptions(relative=True)
    transfer = torch.cat(list(transfer_motion(pipe.animator, still, inputs.driving, options)))  # (T, 3, S, S)
    driving, source = as_frames(inputs.driving), still.expand(n, -1, -1, -1)
    paths["transfer"] = write_video(out / "transfer.mp4", make_grid([driving, source, transfer], ncols=3), fps=DEMO_FPS)

    report("editing a video through its first frame ...")
    edited_first = as_frames(inputs.edited_truth[:1])[0]
    edited = torch.cat(list(transfer_motion(pipe.animator, edited_first, inputs.original, options)))
    original = as_frames(inputs.original)
    paths["edit"] = write_video(out / "edit.mp4", make_grid([original, edited], ncols=2), fps=DEMO_FPS)

    rows = [caption_video(v[:n], label) for v, label in zip([*uncond[:2], *cond[:2], transfer, edited], GIF_LABELS)]
    paths["gif"] = write_video(out / "demo.gif", make_grid(rows, ncols=3), fps=DEMO_FPS)
    sheet_rows = [*uncond[:2], *cond[:2], driving, transfer, original, edited]  # each result under its input
    paths["contact sheet"] = save_contact_sheet(out / "contact_sheet.png", sheet_rows, num_frames=8,
                                                labels=SHEET_LABELS)
    return paths


# The cells of the demo's GIF, row-major (3 a row; short: a 64-pixel cell holds about 10 characters).
GIF_LABELS = ("uncond. 1", "uncond. 2", "still 1", "still 2", "transfer", "edit")
# The rows of the demo's contact sheet, top to bottom.
SHEET_LABELS = ("unconditional 1", "unconditional 2", "from a still 1", "from a still 2", "driving video",
                "transfer to the still", "original video", "edited via frame 1")


# ------------------------------------------------------------------------------------------ domain check

# Is a still one of the demo model's synthetic people? The model's own answer: how much of the still its
# animator fails to reproduce (x -> E -> render, the frame a generated or transferred video starts from).
# Two parts, each divided by its median over unseen synthetic frames: the relative error of the fine
# detail (the Laplacian; median 0.226) and the L1 of 4x4 block means (coarse content; median 0.0049); the
# score is their geometric mean. Measured on the shipped weights (model D): 120 unseen synthetic frames
# (seed 9001, 40 people x frames 0, 21, 42) score 0.69-1.94, the 19 real stills of ../shared/data 2.50-5.7 (and
# 35 of the 39 first frames of its real clips, centre-cropped, are over the limit). Recalibrate on a retrain.
DOMAIN_DETAIL_MEDIAN = 0.226
DOMAIN_COARSE_MEDIAN = 0.0049
DOMAIN_SCORE_LIMIT = 2.2
DOMAIN_NOTE = ("does not look like the demo model's synthetic people, so expect blurred, drifting motion; "
               "train on your own clips (`leo-video prepare`, then `DATA=... CONFIGS=configs/real_faces bash "
               "scripts/train_demo.sh`; README, \"Training, stage by stage\")")


def is_demo_model(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` (a pipeline or animator folder; None: the default) is the embedded demo model."""
    if path is None:
        return True
    folder = demo_pipeline_dir().resolve()
    return Path(path).resolve() in (folder, folder / "animator")


@torch.no_grad()
def demo_domain_score(animator, image: torch.Tensor) -> float:
    """How unlike the demo's synthetic people ``image`` (3, S, S) in [-1, 1] is to ``animator``: about 1 for
    a synthetic frame, over :data:`DOMAIN_SCORE_LIMIT` for a real photo (see the constants above)."""
    import torch.nn.functional as F

    x = image[None].to(next(animator.parameters()).device, torch.float32)  # (1, 3, S, S)
    appearance = animator.encode_appearance(x)  # encoded once: its motion code is the one to render
    y = animator.decode(animator.latent_from_motion(appearance, appearance.motion), appearance.features)
    y = y.clamp(-1, 1)  # its reconstruction of itself, (1, 3, S, S)
    kernel = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]], device=x.device)
    laplacian = lambda v: F.conv2d(v, kernel.expand(3, 1, 3, 3), groups=3)  # noqa: E731 (1, 3, S-2, S-2)
    detail = ((laplacian(x) - laplacian(y)).abs().mean() / laplacian(x).abs().mean().clamp_min(1e-8)).item()
    coarse = (F.avg_pool2d(x, 4) - F.avg_pool2d(y, 4)).abs().mean().item()
    return (detail / DOMAIN_DETAIL_MEDIAN * coarse / DOMAIN_COARSE_MEDIAN) ** 0.5


def unlike_demo_note(animator, image: torch.Tensor, label: str) -> str | None:
    """The note for a still ``image`` (3, S, S) in [-1, 1] that the demo ``animator`` meets and that does not
    look like its synthetic people (``"{label} does not look like ..."``), or None when it does. Only for the
    demo model: the caller checks that (:func:`is_demo_model`)."""
    if demo_domain_score(animator, image) > DOMAIN_SCORE_LIMIT:
        return f"{label} {DOMAIN_NOTE}"
    return None
