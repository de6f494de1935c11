"""`prepare --preset taichi|celebvhq`, `--split-file`, frame-folder formats and the problem report.

Raw videos are synthetic with pixel values given by formulas, so every expected output pixel is
computed here from the formula and the box/span worked out by hand from the metadata rules (FOMM's
``load_videos.py`` for TaichiHD, CelebV-HQ's ``download_and_process.py``), not by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leo_video.config import list_presets, resolve_config
from leo_video.data.prepare import PrepareConfig, prepare_dataset
from leo_video.data.video_dataset import VideoDataset
from leo_video.errors import InputError
from leo_video.media.video import VideoReader, write_video

TAICHI_HEADER = "video_id,start,end,bbox,fps,width,height,partition\n"


def ramp(i: int, h: int, w: int) -> np.ndarray:
    """Frame ``i`` of the lossless raw video: R = 2x, G = 3y, B = 4i (no wrap below 96x72, 60 frames)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([2 * x, 3 * y, np.full_like(x, 4 * i)], axis=-1).astype(np.uint8)


def frame_folder(folder: Path, count: int, h: int, w: int) -> None:
    """A raw 'video' as a png frame folder (25 fps, lossless)."""
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(ramp(i, h, w)).save(folder / f"{i:04d}.png")


def read_folder(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])  # (T, S, S, 3)


@pytest.fixture
def taichi(tmp_path):
    raw = tmp_path / "raw"
    frame_folder(raw / "vidA", 60, 72, 96)  # 25 fps, 96x72: twice the metadata's 48x36
    (raw / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)  # an mp4 cut off early
    metadata = tmp_path / "taichi-metadata.csv"
    metadata.write_text(
        TAICHI_HEADER
        + "vidA,4,10,10-5-34-29,10,48,36,train\n"  # frames i*10 >= 4*25, i*10 < 10*25: i = 10..24
        + "vidA,2,30,0-0-20-20,10,48,36,test\n"  # needs frames up to 74: too short
        + "gone,0,5,0-0-10-10,10,48,36,train\n"  # never downloaded
        + "broken,0,5,0-0-10-10,10,48,36,test\n"
    )
    return raw, metadata


def test_taichi_spans_boxes_problems_and_resume(taichi, tmp_path, run_cli):
    raw, metadata = taichi
    out = tmp_path / "taichi"
    argv = ["prepare", "--preset", "taichi", "--metadata", metadata, "--raw", raw, "--out", out,
            "--size", 48, "--format", "png", "--no-progress"]
    code, stdout, stderr = run_cli(*argv)
    assert code == 0, stderr
    assert "prepared 1 videos, 0 already done, 3 failed (1 missing, 1 too short, 1 corrupt)" in stdout
    assert "split: metadata partition" in stdout and "png frame folders (lossless)" in stdout
    clip = out / "train" / "vidA#000004#000010"
    frames = read_folder(clip)
    # box 10-5-34-29 on 48x36 -> x 20..68, y 10..58 on 96x72: a 48x48 crop, so no resampling
    expected = np.stack([ramp(i, 72, 96)[10:58, 20:68] for i in range(10, 25)])
    assert frames.shape == (15, 48, 48, 3) and np.array_equal(frames, expected)

    report = json.loads((out / "prepare-report.json").read_text())
    kinds = {p["clip"]: p["kind"] for p in report["problems"]}
    assert kinds == {"vidA#000002#000030": "too short", "gone#000000#000005": "missing",
                     "broken#000000#000005": "corrupt"}
    assert report["boxes"] == {"vidA#000004#000010": [20, 10, 68, 58]}
    assert report["fps"] == {"vidA#000004#000010": 25.0}  # the raw frame folder's rate

    before = clip.stat().st_mtime_ns
    code, stdout, _ = run_cli(*argv)
    assert code == 0 and "prepared 0 videos, 1 already done, 3 failed" in stdout
    assert json.loads((out / "prepare-report.json").read_text())["boxes"] == report["boxes"]  # kept for done clips
    assert clip.stat().st_mtime_ns == before  # finished clips are not redone
    import shutil

    shutil.rmtree(clip)  # as if the first run had stopped before this clip
    code, stdout, _ = run_cli(*argv)
    assert "prepared 1 videos, 0 already done" in stdout and np.array_equal(read_folder(clip), expected)
    code, _, stderr = run_cli(*argv[:-2], "mp4", "--no-progress")
    assert code != 0 and "other settings" in stderr


def test_taichi_box_is_scaled_and_resized_for_another_resolution(taichi, tmp_path):
    raw, metadata = taichi
    out = tmp_path / "t"
    config = PrepareConfig(size=24, format="png", preset="taichi", metadata=str(metadata))
    prepare_dataset([raw], out, config, progress=False, warn=lambda message: None)
    frames = read_folder(out / "train" / "vidA#000004#000010")  # 48x48 crop -> 24x24: 2x2 means
    crop = np.stack([ramp(i, 72, 96)[10:58, 20:68] for i in range(10, 25)]).astype(float)
    means = crop.reshape(15, 24, 2, 24, 2, 3).mean(axis=(2, 4))
    inner = (slice(None), slice(2, -2), slice(2, -2))  # away from the frame edge (bicubic support)
    assert np.abs(frames[inner] - means[inner]).max() <= 2


def test_taichi_metadata_errors_name_the_file_and_row(tmp_path):
    bad = tmp_path / "meta.csv"
    bad.write_text(TAICHI_HEADER + "vidA,4,10,10-5-34,10,48,36,train\n")
    with pytest.raises(InputError, match=r"meta.csv: row 2: malformed value"):
        prepare_dataset([tmp_path], tmp_path / "o", PrepareConfig(preset="taichi", metadata=str(bad)), progress=False)
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"meta.csv: expected the TaichiHD columns"):
        prepare_dataset([tmp_path], tmp_path / "o", PrepareConfig(preset="taichi", metadata=str(bad)), progress=False)
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"clips": {"c1": {"ytb_id": "y", "duration": {"start_sec": 0, "end_sec": 1},
                                                 "bbox": {"top": 0.5, "bottom": 0.2, "left": 0, "right": 1}}}}))
    with pytest.raises(InputError, match=r"info.json: clip 'c1': needs 0 <= top < bottom <= 1"):
        prepare_dataset([tmp_path], tmp_path / "o", PrepareConfig(preset="celebvhq", metadata=str(info)), progress=False)


def blocks(i: int) -> np.ndarray:
    """Frame ``i`` of the raw CelebV-HQ video, 200x100: black, except the square x 56..104, y 26..74
    (where the authors' rule puts the crop) in four colour quadrants whose level codes the frame."""
    frame = np.zeros((100, 200, 3), np.uint8)
    level = 80 + 8 * i
    frame[26:50, 56:80] = (level, 0, 0)
    frame[26:50, 80:104] = (0, level, 0)
    frame[50:74, 56:80] = (0, 0, level)
    frame[50:74, 80:104] = (level, level, level)
    return frame


def test_celebvhq_box_rule_and_time_span(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_video(raw / "ytb1.mp4", np.stack([blocks(i) for i in range(20)]), fps=25)
    info = {"clips": {
        "clipA": {"ytb_id": "ytb1", "duration": {"start_sec": 0.2, "end_sec": 0.6},
                  "bbox": {"top": 0.2, "bottom": 0.8, "left": 0.3, "right": 0.5}, "attributes": {}},
        "clipB": {"ytb_id": "ytb1", "duration": {"start_sec": 0.6, "end_sec": 2.0},
                  "bbox": {"top": 0.2, "bottom": 0.8, "left": 0.3, "right": 0.5}, "attributes": {}},
    }}
    (tmp_path / "celebvhq_info.json").write_text(json.dumps(info))
    out = tmp_path / "celebv"
    config = PrepareConfig(size=48, format="png", test_fraction=0, preset="celebvhq",
                           metadata=str(tmp_path / "celebvhq_info.json"))
    summary = prepare_dataset([raw], out, config, progress=False, warn=lambda message: None)
    # Box: expanded by 0.02 -> top .18 bottom .82 left .28 right .52 -> pixels 18, 82, 56, 104 (h 64, w 48)
    # -> square of side 2 * (48 // 2) = 48 about the centre (80, 50): x 56..104, y 26..74.
    assert summary.boxes == {"clipA": [56, 26, 104, 74]}
    assert [p["kind"] for p in summary.problems] == ["too short"]  # clipB needs 2 s of a 0.8 s video
    frames = read_folder(out / "train" / "clipA").astype(int)
    assert len(frames) == 10  # t = i / 25 in [0.2, 0.6): frames 5..14
    for k, frame in enumerate(frames):
        level = 80 + 8 * (5 + k)
        assert np.abs(frame[12, 12] - [level, 0, 0]).max() <= 6 and np.abs(frame[36, 36] - level).max() <= 6
        edges = np.concatenate([frame[0, 4:20], frame[-1, 4:20], frame[4:20, 0], frame[4:20, -1]])
        assert edges.max(axis=1).min() >= level // 2  # no black border (~0): the crop is the square exactly
    assert summary.split_rule.startswith("hash of (seed 0, name)")  # CelebV-HQ has no official split


def test_split_file_and_jpg_frame_folders(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("a", "b", "c"):
        write_video(raw / f"{name}.mp4", np.stack([blocks(i) for i in range(4)]), fps=25)
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": [["a", "x"]], "test": ["b"]}))  # FaceForensics-style pairs
    out = tmp_path / "ds"
    summary = prepare_dataset([raw], out, PrepareConfig(size=32, format="jpg", split_file=str(splits)),
                              progress=False, warn=lambda message: None)
    assert summary.written == {"train": 1, "test": 1}
    assert [(p["clip"], p["kind"]) for p in summary.problems] == [("c", "not in split file")]
    assert sorted(p.name for p in (out / "train" / "a").iterdir()) == [f"{i:07d}.jpg" for i in range(4)]
    assert len(VideoDataset(out, "test", size=32)) == 1
    (tmp_path / "lines.txt").write_text("a train\nb,test\nc validation\n")
    with pytest.raises(InputError, match=r"lines.txt: line 3: expected '<video id> train\|test'"):
        prepare_dataset([raw], tmp_path / "ds2", PrepareConfig(split_file=str(tmp_path / "lines.txt")), progress=False)


def test_every_stage_has_a_preset_for_every_paper_dataset():
    for kind in ("lia", "lmdm", "alpha_prior", "cddpm"):
        for dataset in ("taichi256", "faceforensics256", "celebvhq256"):
            assert dataset in list_presets(kind), (kind, dataset)
            resolve_config(kind, dataset)  # valid


def skin_fraction(frame: np.ndarray) -> float:
    """Share of skin-coloured pixels (the classic YCrCb box Cr 133..173, Cb 77..127) in ``(H, W, 3)``."""
    import cv2

    ycrcb = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YCrCb)
    cr, cb = ycrcb[..., 1], ycrcb[..., 2]
    return float(((cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)).mean())


def test_face_crop_holds_the_face(shared_data, tmp_path):
    """`--crop face` on real clips whose face is a small part of the frame. Second, independent signals:
    OpenCV's *eye* cascade on the raw frames finds eyes inside the box, and skin colour is far denser
    inside the box than outside it."""
    from leo_video.data.face_box import detect

    clips = [shared_data / "videos" / "upperbody" / "upperbody_liveportrait_1.mp4",  # 1280x720
             shared_data / "videos" / "faces" / "face_retalking_1.mp4"]  # 700x700 head and shoulders
    out = tmp_path / "faces"
    summary = prepare_dataset(clips, out, PrepareConfig(size=64, fps=5, format="png", crop="face", test_fraction=0),
                              progress=False)
    assert summary.problems == [] and sorted(summary.boxes) == ["face_retalking_1", "upperbody_liveportrait_1"]
    for clip in clips:
        x0, y0, x1, y1 = summary.boxes[clip.stem]
        assert x1 - x0 == y1 - y0  # square
        reader = VideoReader(clip)
        frames = reader.read(range(0, len(reader), len(reader) // 4))  # (5, H, W, 3)
        assert x1 - x0 < 0.9 * min(frames.shape[1:3])  # a real crop, not the whole frame
        eyes = [e for frame in frames for e in detect(frame, "haarcascade_eye.xml", min_fraction=0.02)]
        centres = np.array([((a + c) / 2, (b + d) / 2) for a, b, c, d in eyes])  # (E, 2) x, y
        inside = (centres >= [x0, y0]).all(axis=1) & (centres < [x1, y1]).all(axis=1)
        assert inside.sum() >= len(frames), (clip.name, eyes)  # an eye per frame in the box, on average
        # the cascade also fires on the odd collar or button: the median eye sits in the box's middle 60%
        side = x1 - x0
        mx, my = np.median(centres, axis=0)
        assert x0 + 0.2 * side < mx < x1 - 0.2 * side and y0 + 0.2 * side < my < y1 - 0.2 * side, (mx, my)
        mask = np.zeros(frames.shape[1:3], bool)
        mask[y0:y1, x0:x1] = True
        skin_in = np.mean([skin_fraction(f[mask].reshape(-1, 1, 3)) for f in frames])
        skin_out = np.mean([skin_fraction(f[~mask].reshape(-1, 1, 3)) for f in frames])
        assert skin_in > 2 * skin_out and skin_in > 0.15, (clip.name, skin_in, skin_out)
        prepared = read_folder(out / "train" / clip.stem)
        assert prepared.shape[1:] == (64, 64, 3) and len(prepared) == len(reader) * 5 // round(reader.info.fps)


def test_clip_without_a_face_is_reported_not_fatal(tmp_path):
    write_video(tmp_path / "noface.mp4", np.stack([blocks(i) for i in range(6)]), fps=25)
    write_video(tmp_path / "ok.mp4", np.stack([blocks(i) for i in range(6)]), fps=25)
    with pytest.raises(InputError, match="no input could be prepared"):
        prepare_dataset([tmp_path / "noface.mp4"], tmp_path / "ds", PrepareConfig(size=16, crop="face"),
                        progress=False, warn=lambda message: None)
    report = json.loads((tmp_path / "ds" / "prepare-report.json").read_text())
    assert [(p["clip"], p["kind"]) for p in report["problems"]] == [("noface", "no face")]


def test_data_loader_benchmark_smoke(tmp_path, monkeypatch):
    """benchmarks/data_loader.py end to end at a tiny size (so a typo never costs GPU-host time)."""
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import data_loader

    data_loader.main(["--device", "cpu", "--threads", "1", "--out", str(tmp_path / "out"), "--work",
                      str(tmp_path / "work"), "--videos", "2", "--frames", "8", "--size", "32", "--workers", "0",
                      "--batch", "2", "--batches", "1", "--clip-length", "4", "--formats", "mp4", "jpg"])
    report = json.loads((tmp_path / "out" / "data_loader.json").read_text())
    assert set(report["pairs"]) == {"mp4", "jpg"} and set(report["pairs"]["jpg"]["pairs_per_s"]) == {"0"}
    assert "| jpg frames → clips of 4 |" in (tmp_path / "out" / "data_loader.md").read_text()
    sys.modules.pop("data_loader", None)


def test_official_taichi_metadata_parses_into_fomms_clips(shared_data):
    """The real taichi-metadata.csv: FOMM's 3,049 train and 285 test clips of 280 videos, unique names, and
    no video split across partitions (FOMM takes a video's partition from its first row)."""
    from leo_video.data.datasets import read_taichi_metadata

    path = shared_data.parent / "reference" / "taichi-metadata.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    clips = read_taichi_metadata(path)
    assert sum(c.partition == "train" for c in clips) == 3049 and sum(c.partition == "test" for c in clips) == 285
    assert len({c.name for c in clips}) == len(clips) and len({c.source for c in clips}) == 280
    partitions = {}
    for clip in clips:
        partitions.setdefault(clip.source, set()).add(clip.partition)
    assert all(len(p) == 1 for p in partitions.values())
    first = clips[0]  # u6rJiF-gPx8,80,300,118-82-508-472,29.97,640,480,train
    assert first.name == "u6rJiF-gPx8#000080#000300" and first.region.pixels(1280, 960) == (236, 164, 1016, 944)
