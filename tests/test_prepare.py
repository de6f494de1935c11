"""`leo-video prepare`: crop/resize/fps/split, bad inputs counted, idempotent and resumable, crop boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leo_video.data.prepare import PrepareConfig, assign_splits, prepare_dataset, resample_indices
from leo_video.data.video_dataset import VideoDataset
from leo_video.errors import InputError
from leo_video.media.video import VideoReader, probe_video, write_video


def quadrant_frames(t: int, h: int, w: int) -> np.ndarray:
    """uint8 (T, H, W, 3): red top-left, green top-right, blue bottom-left, white bottom-right."""
    frame = np.zeros((h, w, 3), np.uint8)
    frame[: h // 2, : w // 2] = (255, 0, 0)
    frame[: h // 2, w // 2 :] = (0, 255, 0)
    frame[h // 2 :, : w // 2] = (0, 0, 255)
    frame[h // 2 :, w // 2 :] = (255, 255, 255)
    return np.repeat(frame[None], t, axis=0)


@pytest.fixture
def raw(tmp_path) -> Path:
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    write_video(raw / "wide.mp4", quadrant_frames(20, 40, 80), fps=20)
    write_video(raw / "sub" / "tall.mp4", quadrant_frames(10, 64, 34), fps=10)
    write_video(raw / "anim.gif", quadrant_frames(6, 32, 32), fps=5)
    frames = raw / "frames_clip"
    frames.mkdir()
    for i, frame in enumerate(quadrant_frames(8, 48, 48)):
        Image.fromarray(frame).save(frames / f"{i}.png")
    (raw / "broken.mp4").write_text("not a video at all")
    return raw


def outputs(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.glob("*/*.mp4"))}


def test_prepare_cli_idempotent_and_resumable(raw, tmp_path, run_cli):
    out = tmp_path / "ds"
    code, stdout, stderr = run_cli("prepare", "--input", raw, "--out", out, "--size", 32,
                                   "--test-fraction", 0.25, "--format", "mp4", "--no-progress")
    assert code == 0, stderr
    assert "prepared 4 videos, 0 already done, 1 failed (1 corrupt); dataset: 3 train / 1 test; split: hash" in stdout
    assert "broken.mp4: not a video" in stderr and "Traceback" not in stderr
    first = outputs(out)
    assert sorted(Path(k).name for k in first) == ["anim.mp4", "frames_clip.mp4", "sub__tall.mp4", "wide.mp4"]
    for name in first:
        info = probe_video(out / name)
        assert (info.width, info.height) == (32, 32)
    wide = VideoReader(next(out.glob("*/wide.mp4")))
    assert len(wide) == 20 and wide._source.index.keyframes == [0, 16]  # short GOPs for random access

    code, stdout, _ = run_cli("prepare", "--input", raw, "--out", out, "--size", 32,
                              "--test-fraction", 0.25, "--format", "mp4", "--no-progress")
    assert code == 0 and "prepared 0 videos, 4 already done" in stdout
    assert outputs(out) == first  # nothing rewritten

    victim = next(iter(first))
    (out / victim).unlink()  # as if the run had been interrupted before this one
    code, stdout, _ = run_cli("prepare", "--input", raw, "--out", out, "--size", 32,
                              "--test-fraction", 0.25, "--format", "mp4", "--no-progress")
    assert "prepared 1 videos, 3 already done" in stdout
    assert set(outputs(out)) == set(first)
    assert len(VideoDataset(out, "train", size=32)) == 3

    code, _, stderr = run_cli("prepare", "--input", raw, "--out", out, "--size", 16, "--format", "mp4", "--no-progress")
    assert code != 0 and "other settings" in stderr and "Traceback" not in stderr


def test_centre_crop_and_fps(raw, tmp_path):
    out = tmp_path / "ds"
    config = PrepareConfig(size=16, fps=10, test_fraction=0, format="mp4")
    summary = prepare_dataset([raw / "wide.mp4"], out, config, progress=False)
    assert summary.written == {"train": 1, "test": 0}
    reader = VideoReader(out / "train" / "wide.mp4")
    assert len(reader) == 10 and reader.info.fps == pytest.approx(10)  # 20 frames at 20 fps -> 1 s at 10 fps
    frame = reader.read([0])[0].astype(int)
    # centre square of the 80x40 frame is x in [20, 60): red|green on top, blue|white below
    assert np.abs(frame[3, 3] - [255, 0, 0]).max() < 40 and np.abs(frame[12, 12] - [255, 255, 255]).max() < 40


def test_crop_boxes(raw, tmp_path):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"wide.mp4": [40, 20, 40, 20]}))  # the white quadrant
    out = tmp_path / "ds"
    summary = prepare_dataset([raw / "wide.mp4", raw / "sub" / "tall.mp4"], out,
                              PrepareConfig(size=16, test_fraction=0, crop=str(boxes), format="mp4"), progress=False)
    assert summary.centre_cropped_without_box == 1
    frame = VideoReader(out / "train" / "wide.mp4").read([5])[0].astype(int)
    assert np.abs(frame - 255).max() < 30
    boxes.write_text("{not json")
    with pytest.raises(InputError, match="boxes.json: not valid JSON"):
        prepare_dataset([raw / "wide.mp4"], tmp_path / "ds2", PrepareConfig(size=16, crop=str(boxes)), progress=False)


def test_nothing_usable_is_an_error(raw, tmp_path):
    with pytest.raises(InputError, match="no input could be prepared"):
        prepare_dataset([raw / "broken.mp4"], tmp_path / "ds", PrepareConfig(size=16), progress=False,
                        warn=lambda message: None)


def test_split_is_deterministic_and_seeded():
    names = [f"v{i}" for i in range(40)]
    splits = assign_splits(names, 0.1, seed=0)
    assert sum(s == "test" for s in splits.values()) == 4
    assert assign_splits(names, 0.1, seed=0) == splits
    assert assign_splits(names, 0.1, seed=1) != splits
    assert "test" in assign_splits(["a", "b"], 0.1, seed=0).values()  # at least one test video
    assert list(resample_indices(6, 30, 10)) == [0, 3] and list(resample_indices(3, 10, 20)) == [0, 0, 1, 1, 2, 2]


def test_stills_are_one_frame_clips(tmp_path, run_cli):
    """--stills: each image is its own one-frame clip (an identity), not a frame of its folder's video; videos
    beside them stay clips; a dataset prepared before the option existed still matches its settings."""
    raw = tmp_path / "raw"
    (raw / "more").mkdir(parents=True)
    colours = {"a.png": (255, 0, 0), "b.jpg": (0, 255, 0), "more/c.webp": (0, 0, 255)}
    for name, colour in colours.items():
        Image.fromarray(np.full((40, 60, 3), colour, np.uint8)).save(raw / name, quality=100)
    write_video(raw / "clip.mp4", quadrant_frames(6, 32, 32), fps=10)
    out = tmp_path / "ds"
    code, stdout, stderr = run_cli("prepare", "--input", raw, "--stills", "--out", out, "--size", 16,
                                   "--test-fraction", 0, "--format", "png", "--no-progress")
    assert code == 0, stderr
    assert "prepared 4 videos, 0 already done, 0 failed; dataset: 4 train / 0 test" in stdout
    train = out / "train"
    assert sorted(p.name for p in train.iterdir()) == ["a", "b", "clip", "more__c"]
    for name, colour in (("a", (255, 0, 0)), ("b", (0, 255, 0)), ("more__c", (0, 0, 255))):
        frames = sorted((train / name).glob("*.png"))
        assert len(frames) == 1
        assert np.abs(np.asarray(Image.open(frames[0])).astype(int) - colour).max() <= 2
    assert len(list((train / "clip").glob("*.png"))) == 6
    pair = VideoDataset(out, "train", size=16, mode="pairs")[0]  # a still's pair is the image twice
    assert pair["source"].shape == (3, 16, 16)

    # without --stills the folder of images is one video of its frames, and a still file is refused
    plain = tmp_path / "plain"
    code, stdout, stderr = run_cli("prepare", "--input", raw / "a.png", "--out", plain, "--size", 16,
                                   "--test-fraction", 0, "--no-progress")
    assert code != 0 and "a.png: is a still image" in stderr and "Traceback" not in stderr

    # settings written before `stills` existed lack the key: they are the default (False), not "other settings"
    old = tmp_path / "old"
    assert run_cli("prepare", "--input", raw / "clip.mp4", "--out", old, "--size", 16, "--test-fraction", 0,
                   "--no-progress")[0] == 0
    settings = json.loads((old / "prepare.json").read_text())
    del settings["stills"]
    (old / "prepare.json").write_text(json.dumps(settings))
    code, stdout, _ = run_cli("prepare", "--input", raw / "clip.mp4", "--out", old, "--size", 16,
                              "--test-fraction", 0, "--no-progress")
    assert code == 0 and "prepared 0 videos, 1 already done" in stdout


def test_stills_need_input_not_a_preset():
    with pytest.raises(InputError, match="--stills reads still images from --input"):
        PrepareConfig(preset="taichi", metadata="m.csv", stills=True)
