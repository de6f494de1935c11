"""VideoDataset: pairs with shared augmentation, strided clips, skipping bad files, empty folders,
splits, determinism, DataLoader workers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from leo_video.data.video_dataset import AugmentConfig, SkippedVideoWarning, VideoDataset
from leo_video.errors import InputError
from leo_video.media.video import write_video

SIZE = 32


def marked_frames(t: int, value_offset: int = 0) -> np.ndarray:
    """uint8 (T, 40, 48, 3) frames whose mean brightness encodes the frame index (5 levels apart),
    with a left/right colour asymmetry so that flips are visible."""
    frames = np.zeros((t, 40, 48, 3), np.uint8)
    for i in range(t):
        frames[i] = 20 + 5 * i + value_offset
    frames[:, :, :24, 0] = 250  # red left half
    return frames


def frame_index_of(image: torch.Tensor) -> int:
    """Recover the marker from the right half's green channel (3, S, S) in [-1, 1]."""
    green = (image[1, :, SIZE // 2 + 2 :].mean().item() + 1) * 127.5
    return round((green - 20) / 5)


@pytest.fixture
def dataset_root(tmp_path) -> Path:
    for split, names in {"train": ["a", "b"], "test": ["c"]}.items():
        (tmp_path / split).mkdir()
        for name in names:
            write_video(tmp_path / split / f"{name}.mp4", marked_frames(30), fps=10)
    frames_dir = tmp_path / "train" / "folder_clip"
    frames_dir.mkdir()
    for i, frame in enumerate(marked_frames(12)):
        Image.fromarray(frame).save(frames_dir / f"{i:04d}.png")
    return tmp_path


def test_splits_and_scanning(dataset_root):
    train = VideoDataset(dataset_root, split="train", size=SIZE)
    assert [p.name for p in train.paths] == ["a.mp4", "b.mp4", "folder_clip"]
    assert len(VideoDataset(dataset_root, split="test", size=SIZE)) == 1
    assert len(VideoDataset(dataset_root, split=None, size=SIZE)) == 4
    assert len(VideoDataset(dataset_root / "train", split="test", size=SIZE)) == 3  # no split folders: root
    single = VideoDataset(dataset_root / "train" / "folder_clip", split=None, size=SIZE)  # a frame folder itself
    assert single.paths == [dataset_root / "train" / "folder_clip"]


def test_pairs_share_augmentation_and_are_reproducible(dataset_root):
    augment = AugmentConfig(flip=True, crop_scale=(0.7, 0.9), brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1)
    data = VideoDataset(dataset_root, "train", mode="pairs", size=SIZE, augment=augment, seed=3)
    plain = VideoDataset(dataset_root, "train", mode="pairs", size=SIZE, seed=3)
    item = data[0]
    assert item["source"].shape == (3, SIZE, SIZE) and item["driving"].shape == (3, SIZE, SIZE)
    assert item["source"].min() >= -1 and item["source"].max() <= 1
    i, j = item["frames"].tolist()
    assert i != j
    flips = set()
    for index in range(len(data)):
        item = data[index]
        src, drv = item["source"], item["driving"]
        # same crop/flip on both: the red half is on the same side of both frames
        red_left = [img[0, :, : SIZE // 4].mean() > img[0, :, -SIZE // 4 :].mean() for img in (src, drv)]
        assert red_left[0] == red_left[1]
        flips.add(bool(red_left[0]))
        assert torch.equal(data[index]["source"], src)  # same (seed, epoch, index) -> same item
    item0 = plain[0]
    assert abs(frame_index_of(item0["source"]) - item0["frames"][0].item()) <= 1
    data.set_epoch(1)
    assert not torch.equal(data[0]["source"], VideoDataset(
        dataset_root, "train", mode="pairs", size=SIZE, augment=augment, seed=3)[0]["source"])


def test_frame_shift_moves_each_frame_on_its_own_and_leaves_the_rest_alone():
    """``frame_shift``: each frame of an item translated by its own whole-pixel draw, edges replicated; the
    shared transform and the random stream without it are unchanged (existing runs stay reproducible)."""
    from leo_video.data.video_dataset import AugmentParams, apply_augment

    base = AugmentConfig(flip=True, brightness=0.2, hue=0.1)
    shifted = AugmentConfig(flip=True, brightness=0.2, hue=0.1, frame_shift=0.2)
    assert AugmentParams.draw(base, np.random.default_rng(5), frames=2) == \
        AugmentParams.draw(base, np.random.default_rng(5), frames=7)  # no shift draws when off
    params = AugmentParams.draw(shifted, np.random.default_rng(5), frames=2)
    plain = AugmentParams.draw(base, np.random.default_rng(5), frames=2)
    assert params.shifts is not None and len(params.shifts) == 2 and plain.shifts is None
    assert (params.flip, params.brightness, params.hue) == (plain.flip, plain.brightness, plain.hue)
    assert all(abs(v) <= 0.2 for shift in params.shifts for v in shift)
    assert any(round(v * 20) for shift in params.shifts for v in shift)  # this draw moves something
    frames = torch.rand(2, 3, 20, 20) * 2 - 1
    reference = apply_augment(frames, plain)
    for (dy, dx), out, ref in zip(params.shifts, apply_augment(frames, params), reference):
        dy, dx = round(dy * 20), round(dx * 20)
        # independent of _translate: the overlap is the reference moved by (dy, dx), the rest an edge copy
        rows, cols = slice(max(dy, 0), 20 + min(dy, 0)), slice(max(dx, 0), 20 + min(dx, 0))
        src_rows, src_cols = slice(max(-dy, 0), 20 + min(-dy, 0)), slice(max(-dx, 0), 20 + min(-dx, 0))
        torch.testing.assert_close(out[:, rows, cols], ref[:, src_rows, src_cols])
        if dy > 0:
            torch.testing.assert_close(out[:, 0, cols], ref[:, 0, src_cols])
    draws = [AugmentParams.draw(shifted, np.random.default_rng(seed), frames=2).shifts for seed in range(20)]
    assert len({shift for draw in draws for shift in draw}) == 40  # every frame its own draw


def test_a_still_is_a_one_frame_video_whose_pairs_frame_shift_moves_apart(tmp_path):
    """A still image as a 1-frame folder (extra identities for LIA training): its pair is the image twice,
    identical without ``frame_shift``, and two different whole-pixel translations of it with."""
    still = tmp_path / "still_a"
    still.mkdir()
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(image).save(still / "0000000.png")
    plain = VideoDataset(tmp_path, None, mode="pairs", size=SIZE, seed=1)[0]
    assert plain["frames"].tolist() == [0, 0]
    torch.testing.assert_close(plain["source"], plain["driving"])
    shifted = VideoDataset(tmp_path, None, mode="pairs", size=SIZE, seed=1,
                           augment=AugmentConfig(frame_shift=0.2), repeats=8)
    moved = [not torch.equal(shifted[i]["source"], shifted[i]["driving"]) for i in range(len(shifted))]
    assert sum(moved) >= 6  # two independent draws of up to ±6 pixels rarely coincide
    for i in range(len(shifted)):  # each frame is the still translated: some whole-pixel offset matches
        for frame in (shifted[i]["source"], shifted[i]["driving"]):  # (up to the colour path's float rounding)
            errors = [(frame[:, max(dy, 0):SIZE + min(dy, 0), max(dx, 0):SIZE + min(dx, 0)]
                       - plain["source"][:, max(-dy, 0):SIZE + min(-dy, 0), max(-dx, 0):SIZE + min(-dx, 0)]).abs().max()
                      for dy in range(-7, 8) for dx in range(-7, 8)]
            assert min(errors) < 1e-5 and sorted(errors)[1] > 0.1


def test_motion_view_recolours_only_the_motion_encoders_copy_of_the_driving_frame(dataset_root):
    """``motion_view``: the item gains ``driving_view``, the driving frame recoloured by a draw of its own (same
    geometry, other colours); source and driving, and the random stream before it, are those without it."""
    plain = VideoDataset(dataset_root, "train", mode="pairs", size=SIZE, seed=4, augment=AugmentConfig(flip=True))
    viewed = VideoDataset(dataset_root, "train", mode="pairs", size=SIZE, seed=4,
                          augment=AugmentConfig(flip=True, motion_view=0.5))
    assert "driving_view" not in plain[0]
    changed = 0
    for i in range(len(viewed)):
        a, b = plain[i], viewed[i]
        torch.testing.assert_close(b["source"], a["source"], rtol=0, atol=1e-6)
        torch.testing.assert_close(b["driving"], a["driving"], rtol=0, atol=1e-6)
        view = b["driving_view"]
        assert view.shape == b["driving"].shape and view.min() >= -1 and view.max() <= 1
        changed += float((view - b["driving"]).abs().mean()) > 0.01
        red_left = [img[0, :, : SIZE // 4].mean() > img[0, :, -SIZE // 4 :].mean() for img in (b["driving"], view)]
        assert red_left[0] == red_left[1]  # the same flip: geometry is shared
    assert changed == len(viewed)


def test_flip_happens_for_some_seeds(dataset_root):
    data = VideoDataset(dataset_root, "train", size=SIZE, augment=AugmentConfig(flip=True), repeats=8)
    sides = {bool(data[i]["source"][0, :, :4].mean() > 0) for i in range(len(data))}
    assert sides == {True, False}


def test_clips_have_stride(dataset_root):
    data = VideoDataset(dataset_root, "train", mode="clips", size=SIZE, clip_length=4, frame_stride=4)
    assert data.clip_span == 13 and data.num_too_short == 1  # the 12-frame folder is dropped
    assert len(data) == 2
    for index in range(len(data)):
        item = data[index]
        assert item["video"].shape == (4, 3, SIZE, SIZE)
        start = item["start"]
        assert 0 <= start <= 30 - 13
        assert [frame_index_of(f) for f in item["video"]] == [start, start + 4, start + 8, start + 12]
    every = VideoDataset(dataset_root, "train", mode="clips", size=SIZE, clip_length=5, clip_sampling="all")
    starts = [(every[i]["video_index"], every[i]["start"]) for i in range(len(every))]
    assert starts == [(0, 0), (0, 5), (0, 10), (0, 15), (0, 20), (0, 25),
                      (1, 0), (1, 5), (1, 10), (1, 15), (1, 20), (1, 25), (2, 0), (2, 5)]


def test_bad_files_skipped_and_counted(dataset_root):
    (dataset_root / "train" / "empty.mp4").write_bytes(b"")
    (dataset_root / "train" / "text.mp4").write_text("not a video")
    good = (dataset_root / "train" / "a.mp4").read_bytes()
    (dataset_root / "train" / "cut.mp4").write_bytes(good[: len(good) // 2])
    with pytest.warns(SkippedVideoWarning) as record:
        data = VideoDataset(dataset_root, "train", size=SIZE)
    assert data.num_skipped == 3 and len(record) == 3
    assert {Path(p).name for p, _ in data.skipped} == {"empty.mp4", "text.mp4", "cut.mp4"}
    assert len(data) == 3 and data[0]["source"].shape == (3, SIZE, SIZE)


def test_video_failing_mid_read_is_skipped(dataset_root):
    data = VideoDataset(dataset_root, "train", size=SIZE)
    (dataset_root / "train" / "a.mp4").write_bytes(b"gone bad after indexing")
    with pytest.warns(SkippedVideoWarning):
        item = data[0]
    assert item["video_index"] == 1 and data.num_skipped == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert data[0]["video_index"] == 1


def test_empty_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("nothing here")
    with pytest.raises(InputError, match=r"train: no usable videos"):
        VideoDataset(tmp_path, "train", size=SIZE)
    with pytest.raises(InputError, match="not found"):
        VideoDataset(tmp_path / "nope", size=SIZE)
    write_video(tmp_path / "train" / "short.mp4", marked_frames(3), fps=10)
    with pytest.raises(InputError, match="1 shorter than 16 frames"):
        VideoDataset(tmp_path, "train", mode="clips", size=SIZE)


def test_dataloader_with_workers(dataset_root):
    data = VideoDataset(dataset_root, "train", size=SIZE, repeats=2)
    loader = torch.utils.data.DataLoader(data, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["video_index"]) for b in batches) == 6
    assert torch.equal(batches[0]["source"][1], data[1]["source"])  # same item in worker and main process


def test_dataloader_workers_forked_after_a_read_in_the_parent(dataset_root):
    """Workers forked after the main process resized frames (PyAV 18.1.1 keeps one scaler per thread, and its
    threads do not survive a fork: workers that scaled with the inherited one waited forever)."""
    data = VideoDataset(dataset_root, "train", size=SIZE)
    expected = data[1]["source"]  # scales frames here, before the fork
    batches = list(torch.utils.data.DataLoader(data, batch_size=3, num_workers=2, shuffle=False))
    assert torch.equal(batches[0]["source"][1], expected)


def test_sample_index_seed_keys_the_draw(dataset_root):
    """The trainer's SampleIndex (an int with .seed): same seed -> same pair, new seed -> new pair."""
    from leo_video.train.sampler import SampleIndex

    data = VideoDataset(dataset_root, "train", mode="pairs", size=SIZE, augment=AugmentConfig(flip=True), seed=3)
    frames = [tuple(data[SampleIndex(0, seed)]["frames"].tolist()) for seed in range(12)]
    assert len(set(frames)) > 3  # a different pair on (almost) every pass
    again = VideoDataset(dataset_root, "train", mode="pairs", size=SIZE, augment=AugmentConfig(flip=True), seed=3)
    for seed in (0, 5, 2**62):  # a fresh dataset (a resumed run, another worker) draws the same
        assert torch.equal(again[SampleIndex(0, seed)]["source"], data[SampleIndex(0, seed)]["source"])
    assert torch.equal(data[0]["source"], again[0]["source"])  # plain ints: keyed on (seed, epoch, index)
    assert data.rng(0).integers(1 << 30) == np.random.default_rng([3, 0, 0]).integers(1 << 30)


def test_find_videos_follows_links_once(tmp_path):
    """A test folder of symbolic links to frame folders and videos elsewhere is read through the links; a link
    back up the tree (a cycle) and a second link to the same folder add nothing."""
    from leo_video.data.video_dataset import find_videos

    store = tmp_path / "store"
    (store / "clip_a").mkdir(parents=True)
    for i, frame in enumerate(marked_frames(3)):
        Image.fromarray(frame).save(store / "clip_a" / f"{i}.png")
    write_video(store / "clip_b.mp4", marked_frames(4), fps=10)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "a").symlink_to(store / "clip_a", target_is_directory=True)
    (linked / "a_again").symlink_to(store / "clip_a", target_is_directory=True)
    (linked / "b.mp4").symlink_to(store / "clip_b.mp4")
    (linked / "loop").symlink_to(linked, target_is_directory=True)
    assert find_videos(linked) == [linked / "a", linked / "b.mp4"]
    assert [len(r) for r in VideoDataset(linked, split=None, size=16, mode="clips", clip_length=3).readers] == [3, 4]
