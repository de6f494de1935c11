"""Options every command reads the same way (issue 24): --steps, --frames bounds and estimates."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")


def _usage_error(capsys, *argv) -> str:
    """Run the CLI on arguments argparse must refuse; returns its stderr."""
    from leo_video.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


STEPS_COMMANDS = {  # each command's --steps with the other required arguments (never reached)
    "generate": ["generate", "--out", "x.mp4"],
    "demo": ["demo"],
    "assemble": ["assemble", "--lia", "l", "--lmdm", "m", "--out", "p"],
    "eval fvd": ["eval", "fvd", "--real", "r", "--fake", "f", "--detector", "d"],
}


@pytest.mark.parametrize("value", ["0", "-3"])
@pytest.mark.parametrize("command", list(STEPS_COMMANDS))
def test_steps_below_one_is_refused_the_same_way_everywhere(command, value, capsys):
    err = _usage_error(capsys, *STEPS_COMMANDS[command], "--steps", value)
    assert f"argument --steps: {value}: must be at least 1" in err.splitlines()[-1], err


BATCH_FRAMES_COMMANDS = {  # each command's --batch-frames with the other required arguments (never reached)
    "animate": ["animate", "--source", "s.png", "--driving", "d.mp4", "--out", "x.mp4"],
    "reconstruct": ["reconstruct", "--video", "v.mp4"],
    "edit": ["edit", "--video", "v.mp4", "--edited-first-frame", "e.png", "--out", "x.mp4"],
    "encode-motion": ["encode-motion", "--data", "d", "--out", "o"],
    "eval recon": ["eval", "recon", "--data", "d"],
    "eval transfer": ["eval", "transfer"],
}


@pytest.mark.parametrize("command", list(BATCH_FRAMES_COMMANDS))
def test_batch_frames_below_one_is_refused_the_same_way_everywhere(command, capsys):
    err = _usage_error(capsys, *BATCH_FRAMES_COMMANDS[command], "--batch-frames", "0")
    assert "argument --batch-frames: 0: must be at least 1" in err.splitlines()[-1], err


def test_manipulate_steps_are_frames_and_need_two(capsys):
    err = _usage_error(capsys, "manipulate", "--checkpoint", "c", "--source", "s", "--out", "o", "--steps", "1")
    assert "argument --steps: 1: must be at least 2" in err.splitlines()[-1], err
    err = _usage_error(capsys, "generate", "--out", "x.mp4", "--steps", "many")
    assert "argument --steps: 'many': not an integer" in err.splitlines()[-1], err


def test_pipeline_refuses_zero_steps_instead_of_using_the_default():
    """The library too: steps=0 used to mean "the pipeline's default" (``steps or default``)."""
    import torch

    from leo_video.errors import InputError
    from leo_video.pipelines.demo import load_demo_pipeline

    pipe = load_demo_pipeline()
    image = torch.zeros(3, pipe.size, pipe.size)
    for name in ("steps", "start_frame_steps"):
        with pytest.raises(InputError, match=f"{name} 0: must be at least 1"):
            next(pipe.stream(image, 4, **{name: 0}))


@pytest.fixture
def no_model_loads(monkeypatch):
    """Loading any pipeline fails the test: a refusal must come before the model."""
    import leo_video.pipelines.demo as demo
    import leo_video.pipelines.leo as leo

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(demo, "load_demo_pipeline", refuse)
    monkeypatch.setattr(leo.LEOPipeline, "from_pretrained", classmethod(refuse))


@pytest.mark.parametrize("argv", [
    ["generate", "--frames", "100000000"],
    ["generate", "--frames", "2000", "--num-videos", "6"],  # 12,000 in all
    ["demo", "--infinite-frames", "20000"],
    ["demo", "--frames", "2000"],  # eight videos of --frames frames
])
def test_absurd_frame_counts_need_yes(argv, tmp_path, run_cli, no_model_loads):
    code, _, err = run_cli(*argv, "--out", tmp_path / ("x.mp4" if argv[0] == "generate" else "demo"))
    lines = err.strip().splitlines()
    option, value = argv[1], argv[2]
    assert code == 2 and len(lines) == 1 and f"{option} {value}:" in lines[0] and "10,000-frame limit" in lines[0], err
    assert "pass --yes" in lines[0] and not list(tmp_path.iterdir())


def test_generate_says_the_length_up_front_and_the_time_after_the_first_chunk(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("LEO_PROGRESS", "1")
    code, out, err = run_cli("generate", "--frames", 40, "--steps", 1, "--source", _still(tmp_path),
                             "--out", tmp_path / "v.mp4", "--device", "cpu")
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("generate: ") and "%|" not in line]
    assert notes[0] == "generate: 40 frames (3 s of video at 15 fps)", err  # the demo model's 15 fps
    assert re.fullmatch(r"generate: first 16 frames in [0-9.]+ s; about [0-9]+ s for the other 24", notes[1]), err
    assert "generate: 100%" in err  # the tqdm bar (with its ETA while running)


def _still(folder):
    import numpy as np
    from PIL import Image

    path = folder / "still.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- the animator of every command


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A still and a 4-frame driving video (64x64), and a folder holding the video."""
    import numpy as np

    from leo_video.media.video import write_video

    root = tmp_path_factory.mktemp("media")
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3)).astype(np.uint8)
    write_video(root / "videos" / "clip.mp4", frames, fps=10)
    return {"still": _still(root), "video": root / "videos" / "clip.mp4", "videos": root / "videos"}


def _animator_argv(command: str, media: dict, out) -> list:
    still, video = media["still"], media["video"]
    return {
        "animate": ["animate", "--source", still, "--driving", video, "--out", out / "a.mp4"],
        "reconstruct": ["reconstruct", "--video", video],
        "manipulate": ["manipulate", "--source", still, "--out", out / "m"],
        "encode-motion": ["encode-motion", "--data", media["videos"], "--out", out / "codes"],
        "eval recon": ["eval", "recon", "--data", media["videos"]],
        "edit": ["edit", "--video", video, "--edited-first-frame", still, "--out", out / "e.mp4"],
    }[command]


ANIMATOR_COMMANDS = ["animate", "reconstruct", "manipulate", "encode-motion", "eval recon", "edit"]


@pytest.mark.parametrize("given", ["nothing", "pipeline folder"])
@pytest.mark.parametrize("command", ANIMATOR_COMMANDS)
def test_every_animator_command_takes_a_pipeline_folder_and_defaults_to_the_demo_model(
        command, given, media, tmp_path, run_cli, monkeypatch):
    """Which file each command hands to load_lia (stopped there: the models themselves are tested elsewhere)."""
    import leo_video.models.loading as loading
    from leo_video.errors import CheckpointError
    from leo_video.pipelines.demo import demo_pipeline_dir

    loaded = []

    def spy(path, device="cpu", dtype=None):
        loaded.append(path)
        raise CheckpointError("stopped by the test after choosing the animator")

    monkeypatch.setattr(loading, "load_lia", spy)
    pipeline = demo_pipeline_dir()  # a LEO pipeline folder like any other
    flag = "--pipeline" if command == "edit" else "--checkpoint"
    extra = [flag, pipeline] if given == "pipeline folder" else []
    code, _, err = run_cli(*_animator_argv(command, media, tmp_path), *extra, "--device", "cpu")
    assert code != 0 and "stopped by the test" in err, err
    assert [str(p) for p in loaded][:1] == [str(pipeline / "animator")]
    if command == "edit" and given == "pipeline folder":  # --lia takes a pipeline folder too
        loaded.clear()
        run_cli(*_animator_argv(command, media, tmp_path), "--lia", pipeline, "--device", "cpu")
        assert [str(p) for p in loaded] == [str(pipeline / "animator")]


def test_animate_runs_on_the_demo_model_by_default(media, tmp_path, run_cli):
    from leo_video.media.video import VideoReader

    code, out, err = run_cli(*_animator_argv("animate", media, tmp_path), "--device", "cpu")
    assert code == 0, err
    reader = VideoReader(tmp_path / "a.mp4")
    assert len(reader) == 4 and reader.info.width == 64 and reader.info.fps == pytest.approx(10)


# ----------------------------------------------------------------------------- outputs, probe, help, --motion-from


@pytest.mark.parametrize("command", ["generate", "animate", "edit", "reconstruct"])
def test_video_output_suffix_is_checked_before_any_model_loads(command, media, tmp_path, run_cli, monkeypatch,
                                                               no_model_loads):
    import leo_video.models.loading as loading

    def refuse(*args, **kwargs):
        raise AssertionError("the animator was loaded before --out was checked")

    monkeypatch.setattr(loading, "load_lia", refuse)
    argv = ["generate", "--out", tmp_path / "a.mp4"] if command == "generate" else _animator_argv(command, media, tmp_path)
    if command == "reconstruct":
        argv += ["--out", tmp_path / "a.mp4"]
    argv = [tmp_path / "video.txt" if str(a).endswith(".mp4") and a != media["video"] else a for a in argv]
    code, _, err = run_cli(*argv, "--device", "cpu")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"{tmp_path / 'video.txt'}: unsupported video suffix" in lines[0], err


def test_probe_on_a_folder_of_videos_probes_each(media, tmp_path, run_cli):
    import json
    import shutil

    import numpy as np
    from PIL import Image

    shutil.copy(media["video"], tmp_path / "b.mp4")
    shutil.copy(media["video"], tmp_path / "a.mp4")
    (tmp_path / "test" / "frames").mkdir(parents=True)
    for t in range(3):
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "test" / "frames" / f"{t}.png")
    code, out, err = run_cli("probe", tmp_path)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["path"], r["frames"]) for r in rows] == [
        (str(tmp_path / "a.mp4"), 4), (str(tmp_path / "b.mp4"), 4), (str(tmp_path / "test" / "frames"), 3)]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli("probe", empty)
    assert code == 2 and f"{empty}: folder holds no png/jpg frames" in err


def test_every_option_of_every_command_has_help():
    import argparse

    from leo_video.cli.main import build_parser

    def undocumented(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    yield from undocumented(child, f"{name} {sub}")
            elif not action.help:
                yield f"{name} {'/'.join(action.option_strings) or action.dest}"

    assert list(undocumented(build_parser(), "leo-video")) == []


def test_eval_motion_help_names_the_encode_motion_command(capsys):
    from leo_video.cli.main import main

    with pytest.raises(SystemExit):
        main(["eval", "motion", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(leo-video encode-motion)" in text


def test_motion_from_a_shorter_clip_warns_and_keeps_its_fps(media, tmp_path, run_cli):
    from leo_video.media.video import VideoReader

    code, _, err = run_cli("generate", "--source", media["still"], "--motion-from", media["video"], "--frames", 10,
                           "--out", tmp_path / "v.mp4", "--device", "cpu")
    assert code == 0, err
    assert (f"leo-video generate: warning: --motion-from {media['video']}: 4 frames of motion, fewer than --frames 10; "
            "the video has 4 frames") in err.splitlines()
    reader = VideoReader(tmp_path / "v.mp4")
    assert len(reader) == 4 and reader.info.fps == pytest.approx(10)  # the clip's 10 fps, not the demo's 15
    code, _, err = run_cli("generate", "--source", media["still"], "--motion-from", media["video"], "--frames", 3,
                           "--fps", 5, "--out", tmp_path / "w.mp4", "--device", "cpu")
    assert code == 0 and "warning" not in err, err
    reader = VideoReader(tmp_path / "w.mp4")
    assert len(reader) == 3 and reader.info.fps == pytest.approx(5)


# ----------------------------------------------------------------------------- the demo model meets a real photo


def _synthetic_still(folder):
    """A frame of a synthetic person the demo model never saw (seed 9001: the demo's own inputs)."""
    from PIL import Image

    from leo_video.data.synthetic import render_synthetic_video

    path = folder / "synthetic.png"
    Image.fromarray(render_synthetic_video(9001, 1, 64, index=3)[0]).save(path)
    return path


def test_demo_domain_score_separates_synthetic_people_from_real_photos(shared_data, tmp_path):
    from leo_video.media.image import load_image
    from leo_video.pipelines.demo import DOMAIN_SCORE_LIMIT, demo_domain_score, load_demo_pipeline

    animator = load_demo_pipeline().animator
    synthetic = demo_domain_score(animator, load_image(_synthetic_still(tmp_path), size=64))
    real = [demo_domain_score(animator, load_image(shared_data / "images" / name, size=64))
            for name in ("faces/face_liveportrait_3.jpg", "bodies/body_lia_taichi_1.png")]
    assert synthetic < 0.8 * DOMAIN_SCORE_LIMIT and min(real) > 1.2 * DOMAIN_SCORE_LIMIT, (synthetic, real)


def test_demo_domain_score_encodes_the_still_once_and_is_its_self_reconstruction(monkeypatch):
    import torch
    import torch.nn.functional as F

    from leo_video.models.lia import LatentImageAnimator
    from leo_video.pipelines import demo

    torch.manual_seed(0)
    animator = LatentImageAnimator(size=64, style_dim=32, motion_dim=6, channel_max=16).eval()
    image = torch.rand(3, 64, 64) * 2 - 1
    calls = []
    animator.enc.net_app.register_forward_hook(lambda *_: calls.append(1))
    score = demo.demo_domain_score(animator, image)
    assert len(calls) == 1  # not once for the appearance and again for the motion code
    with torch.no_grad():  # the definition: LIA's transfer of the still onto itself, x -> E -> render
        x = image[None]
        y = animator(x, x).clamp(-1, 1)
    kernel = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]).expand(3, 1, 3, 3)
    lap = lambda v: F.conv2d(v, kernel, groups=3)  # noqa: E731
    detail = ((lap(x) - lap(y)).abs().mean() / lap(x).abs().mean()).item()
    coarse = (F.avg_pool2d(x, 4) - F.avg_pool2d(y, 4)).abs().mean().item()
    expected = (detail / demo.DOMAIN_DETAIL_MEDIAN * coarse / demo.DOMAIN_COARSE_MEDIAN) ** 0.5
    assert score == pytest.approx(expected, rel=1e-4)
    monkeypatch.setattr(demo, "DOMAIN_SCORE_LIMIT", score * 0.99)
    assert demo.unlike_demo_note(animator, image, "a.png") == f"a.png {demo.DOMAIN_NOTE}"
    monkeypatch.setattr(demo, "DOMAIN_SCORE_LIMIT", score * 1.01)
    assert demo.unlike_demo_note(animator, image, "a.png") is None


@pytest.mark.parametrize("still", ["synthetic", "real"])
def test_the_demo_model_notes_a_real_photo_once(still, shared_data, media, tmp_path, run_cli):
    import shutil

    from leo_video.pipelines.demo import demo_pipeline_dir

    image = _synthetic_still(tmp_path) if still == "synthetic" else shared_data / "images/faces/face_liveportrait_3.jpg"
    code, _, err = run_cli("animate", "--source", image, "--driving", media["video"], "--out", tmp_path / "a.mp4",
                           "--device", "cpu")
    assert code == 0, err
    notes = [line for line in err.splitlines() if "note:" in line]
    if still == "synthetic":
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(f"leo-video animate: note: {image} does not look like")
        assert "configs/real_faces" in notes[0] and "leo-video prepare" in notes[0]
    # another model is never second-guessed: the same still through a copy of the demo's animator
    shutil.copytree(demo_pipeline_dir() / "animator", tmp_path / "elsewhere")
    code, _, err = run_cli("animate", "--checkpoint", tmp_path / "elsewhere", "--source", image, "--driving",
                           media["video"], "--out", tmp_path / "b.mp4", "--device", "cpu")
    assert code == 0 and "note:" not in err, err


# ----------------------------------------------------------------------------- CPU threads on a shared machine


@pytest.mark.parametrize(("cpus", "load", "expected"), [(2, 0.0, 2), (2, 3.8, 1), (2, 1.2, 1), (4, 0.6, 3), (8, 20.0, 1)])
def test_auto_threads_uses_the_free_cores(cpus, load, expected, monkeypatch):
    import os

    from leo_video.utils import threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load), raising=False)
    assert threads.auto_threads() == expected


def test_threads_option_applies_for_the_command_and_is_restored(media, tmp_path, run_cli, monkeypatch, capsys):
    import torch

    import leo_video.models.loading as loading
    from leo_video.errors import CheckpointError
    from leo_video.utils import threads

    seen = []

    def spy(path, device="cpu", dtype=None):
        seen.append(torch.get_num_threads())
        raise CheckpointError("stopped by the test")

    monkeypatch.setattr(loading, "load_lia", spy)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "auto_threads", lambda: 2)
    before = torch.get_num_threads()
    argv = _animator_argv("animate", media, tmp_path)
    for extra, expected in ((["--threads", "2"], 2), (["--threads", "1"], 1), ([], 2)):
        run_cli(*argv, *extra)
        assert seen[-1] == expected and torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's own setting wins over auto
    run_cli(*argv)
    assert seen[-1] == before
    err = _usage_error(capsys, *argv, "--threads", "0")
    assert "argument --threads: 0: must be at least 1 (or 'auto')" in err


def test_leo_video_sets_a_passive_openmp_wait_policy_unless_told_otherwise(run_cli, monkeypatch):
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    run_cli("probe", "missing.mp4")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    run_cli("probe", "missing.mp4")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
