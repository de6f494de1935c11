"""Web UI: handlers as plain functions, app construction, the `ui` command, and the abuse cases.

Tiny random LEO components (64², M = 6) on CPU. The handlers are called the way the app calls them,
with files inside the app's folders; the abuse cases (paths outside those folders, oversized and
overlong uploads, a non-loopback bind, forged file references sent to a running server) are refused
with one-line messages.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("gradio")

from leo_video.errors import InputError  # noqa: E402
from leo_video.media.image import load_image, save_image  # noqa: E402
from leo_video.media.video import VideoReader, probe_video, write_video  # noqa: E402
from leo_video.pipelines.leo import LEOPipeline  # noqa: E402
from leo_video.ui import handlers  # noqa: E402
from leo_video.ui.handlers import AppContext, UIModels  # noqa: E402
from leo_video.ui.validation import UploadError, UploadLimits, check_video, is_loopback  # noqa: E402
from tiny_models import M, tiny_pipeline  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pipe() -> LEOPipeline:
    return tiny_pipeline()


@pytest.fixture
def ctx(pipe, tmp_path, monkeypatch) -> AppContext:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))  # Gradio's upload folder, where build_ui looks
    return AppContext(UIModels.from_pipeline(pipe, "tiny"), tmp_path / "app", UploadLimits(max_video_frames=40),
                      upload_dirs=(uploads,))


def upload_image(ctx: AppContext, name: str = "person.png", seed: int = 1) -> str:
    torch.manual_seed(seed)
    return str(save_image(ctx.upload_dirs[0] / name, torch.rand(3, 80, 96) * 2 - 1))


def upload_video(ctx: AppContext, frames: int = 7, fps: float = 12, name: str = "drive.mp4") -> str:
    torch.manual_seed(2)
    return str(write_video(ctx.upload_dirs[0] / name, torch.rand(frames, 3, 64, 64) * 2 - 1, fps=fps))


def frames_of(path) -> np.ndarray:
    with VideoReader(path) as reader:
        return np.stack(list(reader.iter_frames()))


# ----------------------------------------------------------------------------- handlers


def test_generate_writes_video_and_strip_and_a_second_seed_moves_differently(ctx):
    image, seen = upload_image(ctx), []
    a = handlers.generate(ctx, image, 10, 0, "ddim", 3, progress=lambda f, desc: seen.append(f))
    assert probe_video(a.video).frames == 10 and probe_video(a.video).fps == 10
    assert a.video.parent == ctx.workdir / "outputs" and a.strip.parent == ctx.workdir / "outputs"
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)  # the page's progress bar
    strip = np.asarray(Image.open(a.strip))
    assert strip.shape[1] > handlers.STRIP_FRAMES * 64 and strip.shape[0] < 2 * 64  # one row of 8 frames
    b = handlers.generate(ctx, image, 10, 0, "ddim", 3)
    c = handlers.generate(ctx, image, 10, 1, "ddim", 3)
    sa, sb, sc = (np.asarray(Image.open(r.strip)).astype(int) for r in (a, b, c))
    assert np.array_equal(sa, sb)  # same seed, same video ...
    assert a.video.read_bytes() == b.video.read_bytes()  # ... and the same file (x264 without mbtree)
    first = slice(0, 4 + 64)  # the strip's first cell: frame 1, the start image rendered
    assert np.array_equal(sa[:, first], sc[:, first])  # same start image ...
    assert np.abs(sa[:, 4 + 64:] - sc[:, 4 + 64:]).mean() > 3  # ... another motion


def test_outputs_older_than_an_hour_are_removed(ctx):
    old, fresh = ctx.new_output("generate", ".mp4"), ctx.new_output("generate", ".mp4")
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    hours_ago = time.time() - handlers.OUTPUT_MAX_AGE_S - 60
    os.utime(old, (hours_ago, hours_ago))
    ctx.new_output("strip", ".png")
    assert not old.exists() and fresh.exists()


def test_generate_without_image_is_unconditional_or_says_why(ctx, pipe):
    result = handlers.generate(ctx, None, 5, 3, "ddpm", 2)
    assert probe_video(result.video).frames == 5
    conditional_only = AppContext(UIModels.from_pipeline(tiny_pipeline(with_start_models=False)), ctx.workdir,
                                  ctx.limits, ctx.upload_dirs)
    with pytest.raises(InputError, match="^start image: missing .*cDDPM"):
        handlers.generate(conditional_only, None, 5, 0, "ddim", 2)
    lia_only = AppContext(UIModels(pipe.animator), ctx.workdir, ctx.limits, ctx.upload_dirs)
    with pytest.raises(InputError, match="--pipeline"):
        handlers.generate(lia_only, upload_image(ctx), 5, 0, "ddim", 2)


def test_generate_guidance_scale_reaches_the_start_frame(ctx):
    """The UI's guidance scale changes the unconditional start frame (same seed) and is range-checked."""
    plain = handlers.generate(ctx, None, 2, 3, "ddim", 2)
    guided = handlers.generate(ctx, None, 2, 3, "ddim", 2, 4.0)
    first = [VideoReader(r.video).read([0])[0].astype(float) for r in (plain, guided)]
    assert abs(first[0] - first[1]).mean() > 1.0  # 0..255 levels
    with pytest.raises(InputError, match="^guidance scale:"):
        handlers.generate(ctx, None, 2, 3, "ddim", 2, 99.0)


@pytest.mark.parametrize("frames, seed, sampler, steps, message", [
    (129, 0, "ddim", 3, "^frames: 129 is outside 1..128"),
    (0, 0, "ddim", 3, "^frames:"),
    (4, -1, "ddim", 3, "^seed:"),
    (4, 0, "euler", 3, "^sampler:"),
    (4, 0, "ddim", 10_000, "^steps:"),
])
def test_generate_settings_are_capped(ctx, frames, seed, sampler, steps, message):
    with pytest.raises(InputError, match=message):
        handlers.generate(ctx, upload_image(ctx), frames, seed, sampler, steps)
    assert not (ctx.workdir / "outputs").exists() or not list((ctx.workdir / "outputs").iterdir())


def test_animate_and_edit_write_side_by_side_videos(ctx):
    image, video = upload_image(ctx), upload_video(ctx, frames=7, fps=12)
    animated = handlers.animate(ctx, image, video)
    info = probe_video(animated)
    assert (info.frames, info.fps, info.height) == (7, 12, 64) and info.width >= 3 * 64  # source | driving | result
    edited = handlers.edit(ctx, video, image)
    assert probe_video(edited).frames == 7
    # the edited video's first frame is the edited first frame re-rendered (the right third of the grid)
    first = frames_of(edited)[0][:, -64:].astype(int)
    assert np.array_equal(frames_of(animated)[0][:, -64:], frames_of(edited)[0][:, -64:])  # same inputs, same result
    assert first.std() > 0


def test_motion_sliders_are_lia_linear_manipulation(ctx, pipe):
    from leo_video.media.image import frames_to_numpy, load_image
    from leo_video.pipelines.animate import manipulation_codes

    image = upload_image(ctx)
    animator = pipe.animator
    source = load_image(image, size=64)
    with torch.no_grad():
        appearance = animator.encode_appearance(source[None])
        alpha = animator.encode_motion(source[None])  # (1, M), its own encoder pass
        expected = animator.render(appearance, manipulation_codes(alpha, 2, torch.tensor([1.5])))
    values = [0.0] * M
    values[2] = 1.5
    assert np.array_equal(handlers.motion_frame(ctx, image, values), frames_to_numpy(expected[0]))
    with torch.no_grad():
        reconstruction = frames_to_numpy(animator(source[None], source[None])[0].clamp(-1, 1))
    assert np.abs(handlers.motion_frame(ctx, image, [0.0] * M).astype(int) - reconstruction).max() <= 1


def test_motion_sliders_reuse_the_encoded_source(ctx, pipe, monkeypatch):
    image = upload_image(ctx)
    calls = []
    encode = pipe.animator.encode_appearance
    monkeypatch.setattr(pipe.animator, "encode_appearance", lambda x: calls.append(1) or encode(x))
    for v in (0.0, 0.5, -1.0):
        handlers.motion_frame(ctx, image, [v] * M)
    assert len(calls) == 1
    with pytest.raises(InputError, match="within"):
        handlers.motion_frame(ctx, image, [10.0] * M)
    with pytest.raises(InputError, match="expected 6 values"):
        handlers.motion_frame(ctx, image, [0.0] * 3)


# ----------------------------------------------------------------------------- abuse cases


def test_paths_outside_the_app_folders_are_never_read(ctx, tmp_path):
    outside = tmp_path / "secret.png"
    save_image(outside, torch.zeros(3, 32, 32))
    link = Path(ctx.upload_dirs[0]) / "link.png"
    link.symlink_to(outside)
    traversal = str(Path(ctx.upload_dirs[0]) / ".." / "secret.png")
    for path in (str(outside), traversal, str(link), "/etc/passwd"):
        with pytest.raises(UploadError) as info:
            handlers.generate(ctx, path, 4, 0, "ddim", 2)
        message = str(info.value)
        assert message == "start image: refused (not a file uploaded to this app)"  # one line, no path echoed
    with pytest.raises(UploadError, match="^driving video: refused"):
        handlers.animate(ctx, upload_image(ctx), "/etc/hostname")


def test_uploads_are_checked_for_type_size_and_length(ctx):
    uploads = Path(ctx.upload_dirs[0])
    (uploads / "notes.txt").write_text("hello")
    with pytest.raises(UploadError, match=r"^start image: \.txt is not an image"):
        handlers.generate(ctx, str(uploads / "notes.txt"), 4, 0, "ddim", 2)
    (uploads / "fake.png").write_bytes(b"not a png at all")
    with pytest.raises(UploadError, match="^start image: not an image"):
        handlers.generate(ctx, str(uploads / "fake.png"), 4, 0, "ddim", 2)
    image = upload_image(ctx)
    with pytest.raises(UploadError, match="^driving video: missing"):
        handlers.animate(ctx, image, None)
    with pytest.raises(UploadError, match="^driving video: .png is not a video"):
        handlers.animate(ctx, image, image)
    long_video = upload_video(ctx, frames=41, name="long.mp4")
    with pytest.raises(UploadError, match="^video: 41 frames; this app accepts at most 40"):
        handlers.edit(ctx, long_video, image)
    slow = upload_video(ctx, frames=8, fps=0.25, name="slow.mp4")  # 32 s
    with pytest.raises(UploadError, match=r"^driving video: 32\.0 s long"):
        handlers.animate(ctx, image, slow)
    tiny = UploadLimits(max_upload_mb=0.001)
    with pytest.raises(UploadError, match="MB limit"):
        check_video(upload_video(ctx), "driving video", tiny, ctx.roots)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


# ----------------------------------------------------------------------------- app construction


def test_app_has_four_tabs_and_one_queue_slot_for_the_models(ctx):
    from leo_video.ui.app import MODEL_QUEUE, build_ui

    app = build_ui(ctx, max_queue=5)
    config = app.get_config_file()
    tabs = [c["props"].get("label") for c in config["components"] if c["type"] == "tabitem"]
    assert tabs == ["Generate", "Animate", "Edit", "Motion"]
    sliders = [c for c in config["components"] if c["type"] == "slider" and c["props"]["label"].startswith("direction")]
    assert len(sliders) == M
    frames = next(c for c in config["components"] if c["props"].get("label") == "frames" and c["type"] == "slider")
    assert frames["props"]["maximum"] == 128 and frames["props"]["value"] == 32
    model_events = [fn for fn in app.fns.values() if fn.concurrency_id == MODEL_QUEUE]
    assert {fn.api_name for fn in model_events} >= {"generate", "animate", "edit", "motion"}
    assert all(fn.concurrency_limit == 1 for fn in model_events)  # concurrent users wait in the queue
    assert app._queue.max_size == 5
    assert not [p for p in ctx.workdir.rglob("*") if p.is_file() and "examples" not in p.parts]


def test_app_without_a_pipeline_explains_the_generate_tab(ctx, pipe):
    from leo_video.ui.app import build_ui

    app = build_ui(AppContext(UIModels(pipe.animator, name="lia"), ctx.workdir, ctx.limits))
    texts = [c["props"].get("value", "") for c in app.get_config_file()["components"] if c["type"] == "markdown"]
    assert any("--pipeline" in str(t) for t in texts)
    assert "generate" not in {fn.api_name for fn in app.fns.values()}


def test_gradio_errors_carry_the_one_line_message(ctx):
    import gradio as gr

    from leo_video.ui.app import shown_in_page

    with pytest.raises(gr.Error) as info:
        shown_in_page(handlers.generate)(ctx, upload_image(ctx), 999, 0, "ddim", 2)
    assert info.value.message == "frames: 999 is outside 1..128"


@pytest.mark.parametrize("content", [b"", b"not an image at all"], ids=["zero-byte", "garbage"])
def test_every_upload_component_checks_the_file_before_gradio_opens_it(ctx, content):
    """A broken upload is our one-line message naming the input, not Gradio's "Could not preprocess" with temp paths."""
    import gradio as gr
    from gradio.data_classes import FileData

    from leo_video.ui.app import build_ui

    app = build_ui(ctx)
    uploads = [b for b in app.blocks.values() if isinstance(b, (gr.Image, gr.Video)) and b.interactive is not False
               and b.get_config().get("sources") == ["upload"]]
    labels = sorted(b.label for b in uploads)
    assert labels == ["driving video", "edited first frame", "source image", "source image", "start image", "video"]
    for block in uploads:
        suffix = ".png" if isinstance(block, gr.Image) else ".mp4"
        bad = ctx.upload_dirs[0] / f"broken{suffix}"
        bad.write_bytes(content)
        with pytest.raises(gr.Error) as info:
            block.preprocess(FileData(path=str(bad), orig_name=bad.name))
        message = info.value.message
        assert message.startswith(f"{block.label}: ") and str(bad) not in message and "\n" not in message, message


def test_the_demo_model_notes_a_real_photo_once_per_upload(ctx, shared_data):
    """The page shows a warning (``note``) when the demo model meets a real photo, none for a synthetic person."""
    import shutil

    from leo_video.data.synthetic import render_synthetic_video
    from leo_video.pipelines.demo import load_demo_pipeline

    demo = UIModels.from_pipeline(load_demo_pipeline(), "demo model")
    demo.is_demo = True
    app = AppContext(demo, ctx.workdir, ctx.limits, upload_dirs=ctx.upload_dirs)
    photo = shutil.copy(shared_data / "images" / "faces" / "face_liveportrait_3.jpg", ctx.upload_dirs[0])
    synthetic = save_image(ctx.upload_dirs[0] / "synthetic.png", render_synthetic_video(9001, 1, 64, index=3)[0])
    zeros = [0.0] * demo.motion_dim
    notes = []
    for image in (photo, photo, synthetic):  # the second look at the same upload is cached: no second note
        handlers.motion_frame(app, str(image), zeros, note=notes.append)
    assert len(notes) == 1 and notes[0].startswith("source image does not look like the demo model's"), notes
    demo.is_demo = False  # a model of your own is never second-guessed
    handlers.motion_frame(app, str(save_image(ctx.upload_dirs[0] / "again.png", load_image(photo))), zeros,
                          note=notes.append)
    assert len(notes) == 1


# ----------------------------------------------------------------------------- the `ui` command


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ui") / "pipe"
    tiny_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture
def fake_launch(monkeypatch, tmp_path):
    """Capture `launch` instead of serving; uploads go to a test folder."""
    import leo_video.ui.app as app_module

    calls = []
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(app_module, "launch", lambda app, limits, host, port: calls.append((app, limits, host, port)))
    return calls


def test_ui_command_binds_to_loopback_by_default(run_cli, pipe_dir, fake_launch):
    code, out, err = run_cli("ui", "--pipeline", pipe_dir, "--max-video-frames", "50", "--max-frames", "64")
    assert code == 0, err
    app, limits, host, port = fake_launch[0]
    assert (host, port) == ("127.0.0.1", 7860) and "warning" not in err
    assert (limits.max_video_frames, limits.max_generate_frames) == (50, 64)
    code, out, err = run_cli("ui", "--pipeline", pipe_dir, "--host", "0.0.0.0", "--port", "7999")
    assert code == 0 and fake_launch[1][2:] == ("0.0.0.0", 7999)
    assert "warning: listening on 0.0.0.0" in err


def test_ui_command_user_errors_are_one_line(run_cli, pipe_dir, fake_launch, monkeypatch, tmp_path):
    code, out, err = run_cli("ui", "--pipeline", pipe_dir, "--lia", pipe_dir / "animator")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "not both" in err
    code, out, err = run_cli("ui", "--animator", pipe_dir / "animator", "--prior", pipe_dir / "start_code")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "needs the animator and the motion" in err
    code, out, err = run_cli("ui", "--pipeline", tmp_path / "nothing")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "model_index.json" in err
    code, out, err = run_cli("ui", "--pipeline", pipe_dir, "--port", "70000")
    assert code != 0 and "--port 70000" in err
    code, out, err = run_cli("ui", "--pipeline", pipe_dir, "--max-frames", "0")
    assert code != 0 and err.strip() == "leo-video ui: error: --max-frames 0: must be at least 1"
    monkeypatch.setattr("leo_video.pipelines.demo.DEMO_PIPELINE_NAME", "absent")  # installed without the demo model
    code, out, err = run_cli("ui")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "demo model is missing" in err
    assert not fake_launch


def test_ui_command_opens_on_the_demo_model_by_default(run_cli, pipe_dir, fake_launch, monkeypatch):
    monkeypatch.setattr("leo_video.pipelines.demo.demo_pipeline_dir", lambda: pipe_dir)  # until the model ships
    code, out, err = run_cli("ui")
    assert code == 0, err
    assert "Model: `demo model`" in str(fake_launch[0][0].get_config_file())


@pytest.fixture
def signalled_launch(monkeypatch, tmp_path):
    """`launch` serving for real (a free port) until ``signalled_launch.signum`` arrives 0.3 s after it started;
    records the app and the SIGTERM handler it was served under."""
    import signal

    import leo_video.ui.app as app_module
    from leo_video.utils.atomic import allow_outputs

    real, seen = app_module.launch, {}

    def launch(app, limits, host, port):
        seen.update(app=app, sigterm=signal.getsignal(signal.SIGTERM))
        real(app, limits, host=host, port=free_port(), block=False, quiet=True)
        timer = threading.Timer(0.3, os.kill, (os.getpid(), seen["signum"]))
        timer.start()
        try:
            app.block_thread()  # what launch(block=True) does: sleep until a signal's exception
        finally:
            timer.join()

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(app_module, "launch", launch)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a plain Python process
    yield seen
    signal.signal(signal.SIGTERM, previous)
    allow_outputs()  # a stopped in-process command leaves outputs refused until the next command starts


def test_ui_command_stopped_by_ctrl_c_closes_the_server_and_keeps_the_cli_handlers(run_cli, pipe_dir,
                                                                                   signalled_launch):
    """The CLI's SIGINT handler raises its own stop (not KeyboardInterrupt, which Gradio would catch and close
    on): serve still closes the server; the CLI's SIGTERM handler is not replaced and every handler comes back."""
    import signal

    from leo_video.ui.app import _interrupt

    signalled_launch["signum"] = signal.SIGINT
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    code, out, err = run_cli("ui", "--pipeline", pipe_dir)
    assert code == 128 + signal.SIGINT and "stopped by SIGINT" in err, err
    assert not signalled_launch["app"].is_running  # closed: the port is given back, the queue stopped
    assert signalled_launch["sigterm"] not in (_interrupt, signal.SIG_DFL)  # the CLI's: stop, exit 143
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_serve_outside_the_cli_stops_on_sigterm_and_restores_the_handler(signalled_launch, pipe_dir):
    import signal

    from leo_video.ui.app import _interrupt, serve

    signalled_launch["signum"] = signal.SIGTERM
    models = UIModels.from_pipeline(LEOPipeline.from_pretrained(pipe_dir), "tiny")
    serve(models, UploadLimits())  # returns once SIGTERM closed the server
    assert signalled_launch["sigterm"] is _interrupt and not signalled_launch["app"].is_running
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_ui_command_with_lia_only_serves_the_lia_tabs(run_cli, pipe_dir, fake_launch):
    code, out, err = run_cli("ui", "--lia", pipe_dir / "animator")
    assert code == 0, err
    assert "generate" not in {fn.api_name for fn in fake_launch[0][0].fns.values()}


def test_ui_command_without_gradio_says_how_to_install(run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)
    code, out, err = run_cli("ui")
    assert code != 0 and err.strip().splitlines() == [
        "leo-video ui: error: gradio is not installed: pip install 'leo-video[ui]'"]


# ----------------------------------------------------------------------------- a served app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(ctx, monkeypatch, tmp_path):
    """The app served on 127.0.0.1 with a 1 MB upload limit; yields (base URL, ctx, calls to generate)."""
    from leo_video.ui import app as app_module

    calls = []
    real = handlers.generate

    def spy(*args, **kwargs):  # records each job's (start, end) time
        calls.append([time.monotonic(), None])
        try:
            return real(*args, **kwargs)
        finally:
            calls[-1][1] = time.monotonic()

    monkeypatch.setattr(handlers, "generate", spy)
    ctx.limits = UploadLimits(max_upload_mb=1)
    app = app_module.build_ui(ctx)
    port = free_port()
    app_module.launch(app, ctx.limits, port=port, block=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}", ctx, calls, app
    finally:
        app.close()


def http(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def call_api(base: str, api_name: str, data: list) -> tuple[str, str]:
    """Gradio's plain-HTTP API, as any script could call it: returns (last event, its data)."""
    status, text = http(f"{base}/gradio_api/call/{api_name}", json.dumps({"data": data}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 200, text
    status, stream = http(f"{base}/gradio_api/call/{api_name}/{json.loads(text)['event_id']}")
    events = [line.split(": ", 1)[1] for line in stream.splitlines() if line.startswith("event: ")]
    datas = [line.split(": ", 1)[1] for line in stream.splitlines() if line.startswith("data: ")]
    return events[-1], datas[-1]


def test_served_app_refuses_forged_paths_and_big_uploads_and_listens_on_loopback(served):
    base, ctx, calls, app = served
    assert app.server_name == "127.0.0.1"
    for forged in ("/etc/passwd", str(ctx.upload_dirs[0]) + "/../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd"):
        status, body = http(f"{base}/gradio_api/file={forged}")
        assert status in (403, 404) and "root:" not in body
        event, data = call_api(base, "generate", [{"path": forged, "meta": {"_type": "gradio.FileData"}}, 4, 0, "ddim", 2, 1.0])
        assert event == "error" and "root:" not in data
    assert not calls  # the handler never saw a forged path
    status, text = http(f"{base}/gradio_api/upload", *multipart("big.png", b"\x89PNG" + b"0" * (2 * 1024 * 1024)))
    assert status == 413 and not list(Path(ctx.upload_dirs[0]).rglob("big.png"))
    # a real upload goes through; an out-of-range setting comes back as a one-line message
    status, text = http(f"{base}/gradio_api/upload", *multipart("person.png", Path(upload_image(ctx)).read_bytes()))
    uploaded = json.loads(text)[0]
    event, data = call_api(base, "generate", [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, 4, 0, "ddim", 2, 1.0])
    assert event == "complete" and len(calls) == 1
    assert probe_video(json.loads(data)[0]["path"]).frames == 4
    event, data = call_api(base, "generate", [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, 500, 0, "ddim", 2, 1.0])
    message = json.loads(data)["error"]  # Gradio's slider check answers before the handler's own
    assert event == "error" and "500" in message and "128" in message and "\n" not in message and len(calls) == 1


def multipart(name: str, payload: bytes) -> tuple[bytes, dict]:
    boundary = "leo-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_served_app_runs_concurrent_users_one_at_a_time(served):
    base, ctx, calls, app = served
    status, text = http(f"{base}/gradio_api/upload", *multipart("person.png", Path(upload_image(ctx)).read_bytes()))
    image = {"path": json.loads(text)[0], "meta": {"_type": "gradio.FileData"}}
    events = []
    users = [threading.Thread(target=lambda: events.append(call_api(base, "generate", [image, 24, 0, "ddim", 3, 1.0])[0]))
             for _ in range(3)]
    for user in users:
        user.start()
    for user in users:
        user.join(timeout=60)
    assert events == ["complete"] * 3 and len(calls) == 3
    spans = sorted(calls)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))  # never two at once
