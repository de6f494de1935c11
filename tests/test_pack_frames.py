"""experiments/pack_frames.py: the frames a lent GPU machine trains and scores on are the frames packed here."""

import numpy as np
from conftest import load_experiment
from PIL import Image


def write_clip(folder, frames):
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")


def test_lossless_round_trip_and_check_catches_a_changed_frame(tmp_path):
    """CRF 0 (and any one-frame clip, a still, at any CRF) decodes with OpenCV alone to the very PNG pixels; a
    lossy clip does not, and ``check`` counts its frames; ``unpack`` rebuilds the folders."""
    script = load_experiment("pack_frames")
    rng = np.random.default_rng(0)
    noisy = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(5)]  # noise: what a lossy codec loses
    write_clip(tmp_path / "data/test/clip", noisy)
    write_clip(tmp_path / "data/train/clip", noisy)
    write_clip(tmp_path / "data/train/still_one", noisy[:1])
    packed = tmp_path / "packed"
    assert script.pack(tmp_path / "data", packed, "test", crf=0) == 5
    assert script.pack(tmp_path / "data", packed, "train", crf=30) == 6
    assert sorted(p.name for p in packed.rglob("*")) == ["clip.mkv", "clip.mkv", "still_one.mkv", "test", "train"]
    assert script.check(tmp_path / "data", packed, "test") == 0
    assert script.check(tmp_path / "data", packed, "train") == 5  # the 5 lossy frames; the still is exact
    assert script.unpack(packed, tmp_path / "back") == 11
    for i, frame in enumerate(noisy):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"back/test/clip/{i:05d}.png").convert("RGB")), frame)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back/train/still_one/00000.png").convert("RGB")), noisy[0])
    (tmp_path / "data/test/clip/00004.png").unlink()  # a frame missing from the source counts as one that differs
    assert script.check(tmp_path / "data", packed, "test") == 1
    assert script.main(["check", str(tmp_path / "data"), str(packed), "--split", "test"]) == 1


def test_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    script = load_experiment("pack_frames")
    assert script.main(["pack", str(tmp_path / "nowhere"), str(tmp_path / "out"), "--split", "train"]) == 2
    assert capsys.readouterr().err == f"pack_frames.py: {tmp_path / 'nowhere' / 'train'}: no such folder\n"
    assert not (tmp_path / "out").exists()  # nothing written
