"""The Gradio app: four tabs (Generate, Animate, Edit, Motion) over the plain functions of :mod:`.handlers`.

Gradio is an optional dependency (``pip install leo-video[ui]``); it is imported by this module
only. Safety defaults: every model event shares one queue slot (``concurrency_id="model"``, one job
at a time, at most ``max_queue`` waiting), uploads over the size limit are refused by Gradio before
they reach the disk, handlers read only inside the app's folders, and :func:`launch` binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np
import torch

from ..errors import LeoError
from . import handlers
from .handlers import AppContext
from .validation import UploadLimits, check_image, check_video

TITLE = "LEO: latent image animator + latent motion diffusion"
MODEL_QUEUE = "model"
MODEL_EVENT = dict(concurrency_id=MODEL_QUEUE, concurrency_limit=1)  # one job at a time on the models, any tab


def local_fonts_theme() -> gr.themes.Base:
    """Gradio's default theme with system fonts: the default fetches Google Fonts, which an offline
    machine cannot reach."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def shown_in_page(fn: Callable) -> Callable:
    """Turn a user error (:class:`LeoError`) into ``gr.Error``: a readable one-line message in the page."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LeoError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    return wrapper


def checked_upload(component: gr.Image | gr.Video, check: Callable[[str], object]) -> gr.Image | gr.Video:
    """Run ``check(path)`` on every upload before the component's own preprocessing; returns ``component``.

    Gradio's preprocessing opens images with PIL and would show a zero-byte or corrupt upload as a raw
    "Could not preprocess input component ..." error with temp paths; ``check`` raises a
    :class:`LeoError` instead, shown in the page as our one-line message. (The instance's ``preprocess``
    is wrapped: a subclass of a Gradio component makes Gradio write a ``.pyi`` stub beside our module.)
    """
    preprocess = component.preprocess

    @functools.wraps(preprocess)
    def checked(payload):
        if payload is not None:
            try:
                check(payload.path)
            except LeoError as exc:
                raise gr.Error(str(exc), print_exception=False) from exc
        return preprocess(payload)

    component.preprocess = checked
    return component


def build_ui(ctx: AppContext, max_queue: int = 16) -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` (queue configured; not launched)."""
    gradio_uploads = Path(gr.utils.get_upload_folder())
    if gradio_uploads not in ctx.upload_dirs:
        ctx.upload_dirs = (*ctx.upload_dirs, gradio_uploads)
    examples = handlers.write_examples(ctx)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"## {TITLE}\nModel: `{ctx.models.name}` ({ctx.models.size}×{ctx.models.size}, "
                    f"{ctx.models.motion_dim} motion directions)")
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                _generate_tab(ctx, examples)
            with gr.Tab("Animate", id="animate"):
                _animate_tab(ctx, examples)
            with gr.Tab("Edit", id="edit"):
                _edit_tab(ctx, examples)
            with gr.Tab("Motion", id="motion"):
                _motion_tab(ctx, examples)
    app.queue(max_size=max_queue, default_concurrency_limit=1)
    return app


def _image_input(ctx: AppContext, label: str, elem_id: str) -> gr.Image:
    image = gr.Image(label=label, type="filepath", sources=["upload"], format="png", height=256, elem_id=elem_id)
    return checked_upload(image, lambda path: check_image(path, label, ctx.limits, ctx.roots))


def _video_input(ctx: AppContext, label: str, elem_id: str) -> gr.Video:
    video = gr.Video(label=label, sources=["upload"], height=256, elem_id=elem_id)
    return checked_upload(video, lambda path: check_video(path, label, ctx.limits, ctx.roots))


def _generate_tab(ctx: AppContext, examples: handlers.Examples) -> None:
    models, limits = ctx.models, ctx.limits
    if not models.can_generate:
        gr.Markdown("Generation needs a LEO pipeline: start the app with `--pipeline DIR`.")
        return
    hint = " Leave it empty for unconditional generation." if models.can_generate_unconditional else ""
    gr.Markdown("Upload or pick a start image; LEO samples its future motion. "
                f"Another seed on the same image gives another motion.{hint}")
    with gr.Row():
        with gr.Column():
            image = _image_input(ctx, "start image", "generate-image")
            gr.Examples([[str(p)] for p in examples.stills], inputs=[image], label="pick a start image")
            frames = gr.Slider(1, limits.max_generate_frames, value=limits.default_generate_frames, step=1,
                               label="frames")
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            defaults = models.pipeline.defaults
            sampler = gr.Dropdown(list(handlers.SAMPLERS), value=defaults.sampler, label="sampler")
            steps = gr.Slider(1, handlers.MAX_STEPS, value=defaults.steps, step=1, label="denoising steps")
            guidance = gr.Slider(0, handlers.MAX_GUIDANCE, value=defaults.guidance_scale, step=0.5,
                                 label="start-frame guidance scale (unconditional)",
                                 visible=models.can_generate_unconditional)
            button = gr.Button("Generate", variant="primary")
        with gr.Column():
            video = gr.Video(label="generated video", interactive=False, autoplay=True, loop=True, height=420)
            strip = gr.Image(label="frames", interactive=False, type="filepath")

    @shown_in_page
    def run(image, frames, seed, sampler, steps, guidance_scale, progress=gr.Progress()):
        result = handlers.generate(ctx, image, frames, seed, sampler, steps, guidance_scale,
                                   progress=lambda f, desc: progress(f, desc=desc), note=gr.Warning)
        return str(result.video), str(result.strip)

    button.click(run, [image, frames, seed, sampler, steps, guidance], [video, strip], **MODEL_EVENT,
                 api_name="generate")


def _animate_tab(ctx: AppContext, examples: handlers.Examples) -> None:
    gr.Markdown("LIA motion transfer: the driving video's motion on the source image "
                "(output: source | driving | result).")
    with gr.Row():
        inputs = [_image_input(ctx, "source image", "animate-source"),
                  _video_input(ctx, "driving video", "animate-driving")]
    _transfer_run(ctx, handlers.animate, inputs, examples.animate, "Animate", "source | driving | result")


def _edit_tab(ctx: AppContext, examples: handlers.Examples) -> None:
    gr.Markdown("Edit a video by editing its first frame: the original motion is re-rendered on the edited "
                "frame (output: edited first frame | original | edited video).")
    with gr.Row():
        inputs = [_video_input(ctx, "video", "edit-video"), _image_input(ctx, "edited first frame", "edit-first-frame")]
    _transfer_run(ctx, handlers.edit, inputs, examples.edit, "Edit", "edited first frame | original | edited")


def _transfer_run(ctx: AppContext, handler: Callable, inputs: list, example: tuple[Path, Path], name: str,
                  result_label: str) -> None:
    """Example, button and side-by-side result of a two-input transfer tab (Animate, Edit)."""
    gr.Examples([[str(p) for p in example]], inputs=inputs, label="example")
    button = gr.Button(name, variant="primary")
    result = gr.Video(label=result_label, interactive=False, autoplay=True, loop=True)

    @shown_in_page
    def run(first, second, progress=gr.Progress(track_tqdm=True)):  # progress: write_transfer's tqdm bar
        return str(handler(ctx, first, second, note=gr.Warning))

    button.click(run, inputs, result, **MODEL_EVENT, api_name=name.lower())


def _motion_tab(ctx: AppContext, examples: handlers.Examples) -> None:
    gr.Markdown("LIA's linear manipulation: each slider moves the source along one direction of the motion "
                "dictionary (all at 0: the source itself).")
    M, bound = ctx.models.motion_dim, handlers.MOTION_RANGE
    with gr.Row():
        with gr.Column():
            source = _image_input(ctx, "source image", "motion-source")
            gr.Examples([[str(p)] for p in examples.stills], inputs=[source], label="pick a source image")
            reset = gr.Button("Reset sliders")
        frame = gr.Image(label="moved source", interactive=False, type="numpy", format="png", height=256,
                         elem_id="motion-frame")
    with gr.Row():
        sliders = [gr.Slider(-bound, bound, value=0.0, step=0.05, label=f"direction {k}", min_width=160)
                   for k in range(M)]

    @shown_in_page
    def run(source, *values):
        return None if source is None else enlarged(handlers.motion_frame(ctx, source, values, note=gr.Warning))

    inputs = [source, *sliders]
    options = dict(**MODEL_EVENT, trigger_mode="always_last", show_progress="hidden")
    source.change(run, inputs, frame, api_name="motion", **options)
    for slider in sliders:
        slider.input(run, inputs, frame, api_name=False, **options)  # live while dragging; stale moves dropped
    reset.click(lambda: [0.0] * M, None, sliders, queue=False, api_name=False).then(
        run, inputs, frame, api_name=False, **options)


def enlarged(frame: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Repeat pixels so a small model's frame (S, S, 3) shows at least ``min_side`` wide, unblurred."""
    k = max(1, min_side // frame.shape[0])
    return frame.repeat(k, axis=0).repeat(k, axis=1)  # (k S, k S, 3)


def launch(app: gr.Blocks, limits: UploadLimits, host: str = "127.0.0.1", port: int = 7860,
           block: bool = True, quiet: bool = False) -> gr.Blocks:
    """Serve ``app`` on ``host:port`` (loopback by default), with Gradio's upload size limit set.

    ``share`` is always off (no tunnel to a public URL); server-side rendering is off (no Node.js).
    With ``block=False`` it returns at once (tests); ``app.close()`` stops it.
    """
    app.launch(server_name=host, server_port=port, share=False, max_file_size=limits.max_upload_bytes,
               prevent_thread_lock=not block, quiet=quiet, ssr_mode=False, show_error=True,
               footer_links=["settings"], theme=local_fonts_theme())
    return app


def serve(models: handlers.UIModels, limits: UploadLimits, host: str = "127.0.0.1", port: int = 7860,
          max_queue: int = 16, dtype: torch.dtype = torch.float32) -> None:
    """Build the app on ``models`` and serve it until interrupted (Ctrl-C or SIGTERM); the server is closed and
    the app's temporary folder (outputs, and Gradio's uploads unless GRADIO_TEMP_DIR is set) removed afterwards,
    however it stopped."""
    workdir = _app_folder(tempfile.mkdtemp(prefix="leo-ui-"))
    try:
        with _sigterm_interrupts():
            app = build_ui(AppContext(models, workdir, limits, dtype=dtype), max_queue=max_queue)
            try:
                launch(app, limits, host=host, port=port)
            finally:  # Gradio closes its server on KeyboardInterrupt only; the CLI's stop signals raise another
                app.close(verbose=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_interrupts():
    """Where SIGTERM has no handler yet, `kill` stops the server like Ctrl-C while this runs; the previous
    handler is restored afterwards. A handler already there (the CLI's: stop, exit 143) is kept."""
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _app_folder(path: str) -> Path:
    """The app's temporary folder; Gradio's uploads go inside it too (unless GRADIO_TEMP_DIR is set)."""
    folder = Path(path)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(folder / "uploads"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from an offline machine
    return folder
