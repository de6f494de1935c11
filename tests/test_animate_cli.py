"""`animate`, `reconstruct` and `manipulate` on a tiny random animator (CPU)."""

import json

import numpy as np
import pytest
import torch

from leo_video.media.image import save_image
from leo_video.media.video import VideoReader, probe_video, write_video
from leo_video.models.lia import LatentImageAnimator
from leo_video.pipelines.animate import AnimateOptions, frames_to_batch, transfer_motion


@pytest.fixture(scope="module")
def lia(tmp_path_factory):
    torch.manual_seed(0)
    model = LatentImageAnimator(size=64, style_dim=32, motion_dim=5, channel_max=16).eval()
    path = tmp_path_factory.mktemp("lia") / "official.pt"
    torch.save({"gen": model.state_dict(), "dis": {}}, path)  # the official checkpoint layout
    return model, path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from leo_video.data.synthetic import render_synthetic_video

    path = tmp_path_factory.mktemp("clip") / "drive.mp4"
    write_video(path, render_synthetic_video(seed=4, num_frames=11, size=80), fps=15)  # 80: not the model size
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "source.png"
    torch.manual_seed(3)
    save_image(path, torch.rand(3, 96, 128) * 2 - 1)  # non-square: centre-cropped
    return path


def test_streamed_batches_equal_the_official_per_frame_pattern(lia, clip):
    model, _ = lia
    frames = list(VideoReader(clip).iter_frames())
    batch = frames_to_batch(frames, 64, torch.device("cpu"))  # (T, 3, 64, 64)
    source = batch[3]
    streamed = torch.cat(list(transfer_motion(model, source, iter(frames), AnimateOptions(batch_frames=4))))
    with torch.no_grad():  # LIA's demo: the whole generator per frame, h_start = first driving frame's code
        start = model.encode_motion(batch[:1])
        official = torch.cat([model(source[None], batch[t : t + 1], start) for t in range(len(batch))])
    torch.testing.assert_close(streamed, official, atol=1e-4, rtol=0)


def test_animate_command(run_cli, lia, clip, source, tmp_path):
    out = tmp_path / "out.mp4"
    code, stdout, err = run_cli("animate", "--checkpoint", lia[1], "--source", source, "--driving", clip,
                                "--out", out, "--batch-frames", "4", "--side-by-side", "--device", "cpu")
    assert code == 0, err
    info = probe_video(out)
    assert (info.frames, info.fps) == (11, 15) and info.width >= 3 * 64
    code, _, err = run_cli("animate", "--checkpoint", lia[1], "--source", source, "--driving", clip, "--out", out)
    assert code != 0 and "--overwrite" in err


def test_animate_errors_name_the_input(run_cli, lia, clip, source, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    cases = [
        (["--checkpoint", tmp_path / "missing.pt", "--source", source, "--driving", clip], "missing.pt"),
        (["--checkpoint", lia[1], "--source", tmp_path / "nope.png", "--driving", clip], "nope.png"),
        (["--checkpoint", lia[1], "--source", source, "--driving", bad], "bad.mp4"),
        (["--checkpoint", lia[1], "--source", source, "--driving", clip, "--size", "128"], "--size"),
    ]
    for k, (argv, named) in enumerate(cases):
        out = tmp_path / f"o{k}.mp4"
        code, _, err = run_cli("animate", *argv, "--out", out)
        assert code != 0 and len(err.strip().splitlines()) == 1 and named in err, err
        assert not out.exists()


def test_reconstruct_prints_l1(run_cli, lia, clip, tmp_path):
    code, stdout, err = run_cli("reconstruct", "--checkpoint", lia[1], "--video", clip, "--out", tmp_path / "r.mp4",
                                "--device", "cpu")
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["frames"] == 11 and 0 < result["l1"] < 1
    with VideoReader(clip) as reader:
        frames = frames_to_batch(list(reader.iter_frames()), 64, torch.device("cpu"))  # (T, 3, 64, 64)
    assert result["still_l1"] == pytest.approx(float((frames - frames[:1]).abs().mean() / 2), rel=1e-5)
    assert probe_video(tmp_path / "r.mp4").frames == 11


def test_manipulate_writes_videos_and_sheet(run_cli, lia, source, tmp_path):
    code, _, err = run_cli("manipulate", "--checkpoint", lia[1], "--source", source, "--direction", "2",
                           "--steps", "5", "--out", tmp_path / "m", "--device", "cpu")
    assert code == 0, err
    assert probe_video(tmp_path / "m" / "direction_02.mp4").frames == 5
    assert (tmp_path / "m" / "contact_sheet.png").stat().st_size > 0
    code, _, err = run_cli("manipulate", "--checkpoint", lia[1], "--source", source, "--direction", "7",
                           "--out", tmp_path / "m2")
    assert code != 0 and "directions 0..4" in err
