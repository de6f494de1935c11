"""The motion-code store: write/read, resume, atomic shards, clip dataset, normalisation statistics."""

from __future__ import annotations

import json

import pytest
import torch

from leo_video.data.motion_codes import (
    INDEX_NAME,
    MotionClipDataset,
    MotionCodeStore,
    MotionCodeWriter,
    code_normalization,
    compute_code_stats,
    compute_residual_stats,
    sha256_checkpoint,
    sha256_file,
    select_split,
)
from leo_video.errors import InputError, NumericalError

M = 3


def make_codes(T: int, seed: int) -> torch.Tensor:
    return torch.randn(T, M, generator=torch.Generator().manual_seed(seed))


def test_checkpoint_hash_of_a_file_and_of_a_folder(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"weights")
    assert sha256_checkpoint(tmp_path / "ckpt.pt") == sha256_file(tmp_path / "ckpt.pt")
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "model.safetensors").write_bytes(b"abc")
    first = sha256_checkpoint(folder)
    assert len(first) == 64 and first == sha256_checkpoint(folder)
    (folder / "sub" / "model.safetensors").write_bytes(b"abd")  # other weights, another hash
    assert sha256_checkpoint(folder) != first
    with pytest.raises(InputError, match="nowhere: no such LIA checkpoint"):
        sha256_checkpoint(tmp_path / "nowhere")


def write_store(root, lengths: dict[str, int], shard_size: int = 2, **kwargs) -> dict[str, torch.Tensor]:
    codes = {name: make_codes(T, i) for i, (name, T) in enumerate(lengths.items())}
    with MotionCodeWriter(root, shard_size=shard_size, **kwargs) as writer:
        for name, c in codes.items():
            assert writer.add(name, c, {"source": f"/videos/{name}.mp4", "fps": 25, "split_hint": "x"})
    return codes


def test_write_read_round_trip(tmp_path):
    ckpt = tmp_path / "lia.pt"
    ckpt.write_bytes(b"not really a checkpoint")
    codes = write_store(tmp_path / "codes", {"a": 5, "b/c d": 9, "e": 3}, lia_checkpoint=ckpt)
    store = MotionCodeStore(tmp_path / "codes")
    assert store.names == ["a", "b/c d", "e"] and len(store) == 3 and "e" in store
    assert store.motion_dim == M
    assert store.checkpoint_sha256 == sha256_file(ckpt) and len(store.checkpoint_sha256) == 64
    for name, c in codes.items():
        assert torch.equal(store.codes(name), c)
        info = store.info(name)
        assert info["num_frames"] == c.shape[0] and info["motion_dim"] == M
        assert info["source"] == f"/videos/{name}.mp4" and info["fps"] == 25.0 and info["split_hint"] == "x"
        assert info["frame_indices"] == list(range(c.shape[0]))
    assert {n: c for n, c in store.items()}.keys() == codes.keys()
    assert sorted(p.name for p in (tmp_path / "codes").glob("*.safetensors")) == [
        "codes-00000.safetensors", "codes-00001.safetensors"]  # shard_size 2
    with pytest.raises(InputError, match="no such video"):
        store.codes("missing")


def test_frame_indices_kept_compact_and_exact(tmp_path):
    with MotionCodeWriter(tmp_path) as writer:
        writer.add("strided", make_codes(4, 0), {"frame_indices": [10, 12, 14, 16]})
        writer.add("irregular", make_codes(3, 1), {"frame_indices": [0, 5, 6]})
        with pytest.raises(InputError, match="frame_indices"):
            writer.add("bad", make_codes(3, 2), {"frame_indices": [0, 1]})
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert index["videos"][0]["frame_indices"] == {"start": 10, "step": 2, "count": 4}
    store = MotionCodeStore(tmp_path)
    assert store.info("strided")["frame_indices"] == [10, 12, 14, 16]
    assert store.info("irregular")["frame_indices"] == [0, 5, 6]


def test_resume_skips_stored_videos_and_checks_checkpoint(tmp_path):
    first = write_store(tmp_path, {"a": 4, "b": 4, "c": 4}, checkpoint_sha256="f" * 64)
    with MotionCodeWriter(tmp_path, shard_size=2, checkpoint_sha256="f" * 64) as writer:
        assert "a" in writer and len(writer) == 3
        assert writer.add("a", make_codes(4, 99), {}) is False  # already encoded: skipped
        assert writer.add("d", make_codes(6, 3), {}) is True
    store = MotionCodeStore(tmp_path)
    assert store.names == ["a", "b", "c", "d"]
    assert torch.equal(store.codes("a"), first["a"])  # not overwritten
    assert torch.equal(store.codes("d"), make_codes(6, 3))
    with pytest.raises(InputError, match="LIA checkpoint"):
        MotionCodeWriter(tmp_path, checkpoint_sha256="0" * 64)
    with pytest.raises(InputError, match="motion_dim"):
        MotionCodeWriter(tmp_path, motion_dim=M + 1)


def test_crash_before_flush_leaves_a_consistent_store(tmp_path):
    writer = MotionCodeWriter(tmp_path, shard_size=2)
    for i in range(3):
        writer.add(f"v{i}", make_codes(4, i), {})
    # "crash": the third video was queued but never flushed; no temp files are left behind
    store = MotionCodeStore(tmp_path)
    assert store.names == ["v0", "v1"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with MotionCodeWriter(tmp_path, shard_size=2) as resumed:  # rerun: only v2 is encoded again
        assert [resumed.add(f"v{i}", make_codes(4, i), {}) for i in range(3)] == [False, False, True]
    assert MotionCodeStore(tmp_path).names == ["v0", "v1", "v2"]


def test_writer_rejects_bad_codes(tmp_path):
    with MotionCodeWriter(tmp_path) as writer:
        writer.add("ok", make_codes(2, 0), {})
        with pytest.raises(InputError, match="wrong_m"):
            writer.add("wrong_m", torch.zeros(4, M + 1), {})
        with pytest.raises(InputError, match="flat"):
            writer.add("flat", torch.zeros(4), {})
        with pytest.raises(NumericalError, match="nan"):
            writer.add("nan", torch.full((2, M), float("nan")), {})
    assert MotionCodeStore(tmp_path).names == ["ok"]
    with pytest.raises(InputError, match="not a motion-code store"):
        MotionCodeStore(tmp_path / "nowhere")


def test_clip_dataset_drops_short_videos_and_is_seeded(tmp_path):
    codes = write_store(tmp_path, {"long": 30, "mid": 9, "short": 4})
    ds = MotionClipDataset(tmp_path, clip_length=4, frame_stride=3)  # a clip spans 10 codes
    assert ds.names == ["long"] and ds.dropped == ["mid", "short"] and len(ds.dropped) == 2
    clip = ds[0]
    assert clip.shape == (4, M) and clip.dtype == torch.float32
    # the clip is a strided window of the stored sequence
    full = codes["long"]
    starts = [s for s in range(30 - 9) if torch.equal(full[s : s + 10 : 3], clip)]
    assert len(starts) == 1
    assert torch.equal(ds[0], clip)  # same (seed, epoch, index) -> same clip
    seen = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        seen.add(tuple(ds[0][0].tolist()))
    assert len(seen) > 1  # the start moves between epochs
    loader = torch.utils.data.DataLoader(MotionClipDataset(tmp_path, clip_length=3), batch_size=3)
    assert next(iter(loader)).shape == (3, 3, M)
    with pytest.raises(InputError, match="too short"):
        MotionClipDataset(tmp_path, clip_length=40)


def test_split_uses_recorded_split_else_a_stable_hash(tmp_path):
    with MotionCodeWriter(tmp_path) as writer:
        for i in range(200):
            writer.add(f"video_{i}", make_codes(2, i), {})
        writer.add("pinned_test", make_codes(2, 0), {"split": "test"})
        writer.add("pinned_train", make_codes(2, 0), {"split": "train"})
    store = MotionCodeStore(tmp_path)
    train, test = select_split(store, "train", 0.2), select_split(store, "test", 0.2)
    assert sorted(train + test) == sorted(store.names) and not set(train) & set(test)
    assert "pinned_test" in test and "pinned_train" in train
    assert 20 <= len(test) <= 70
    assert select_split(store, None) == store.names
    with pytest.raises(InputError, match="split 'val'"):
        select_split(store, "val")
    ds = MotionClipDataset(tmp_path, clip_length=2, split="test", test_fraction=0.2)
    assert ds.names == test


def test_clip_start_follows_the_trainers_sample_seed(tmp_path):
    write_store(tmp_path, {"long": 200})
    ds = MotionClipDataset(tmp_path, clip_length=4)

    class SeededIndex(int):  # what the trainer's SampleIndex looks like
        seed = 0

    clips = []
    for seed in (11, 11, 12):
        index = SeededIndex(0)
        index.seed = seed
        clips.append(ds[index])
    assert torch.equal(clips[0], clips[1]) and not torch.equal(clips[0], clips[2])


def test_code_and_residual_stats(tmp_path):
    codes = write_store(tmp_path, {"a": 12, "b": 7, "c": 2})
    mean, std = compute_code_stats(tmp_path)
    everything = torch.cat(list(codes.values())).double()
    torch.testing.assert_close(mean, everything.mean(0).float())
    torch.testing.assert_close(std, everything.std(0, unbiased=False).float())

    r_mean, r_std = compute_residual_stats(MotionCodeStore(tmp_path), clip_length=3, frame_stride=2)
    residuals = []
    for c in codes.values():  # brute force: every clip start s, every k = 1, 2
        for s in range(c.shape[0] - 4):
            residuals += [c[s + 2] - c[s], c[s + 4] - c[s]]
    residuals = torch.stack(residuals).double()
    torch.testing.assert_close(r_mean, residuals.mean(0).float())
    torch.testing.assert_close(r_std, residuals.std(0, unbiased=False).float())
    with pytest.raises(InputError, match="residual stats"):
        compute_residual_stats(tmp_path, clip_length=50)

    stats = code_normalization(tmp_path, clip_length=3, frame_stride=2, names=["a", "b"])
    assert set(stats) == {"code_mean", "code_std", "residual_std"}
    torch.testing.assert_close(stats["code_mean"], torch.cat([codes["a"], codes["b"]]).mean(0))
    from leo_video.diffusion.motion import MotionDiffusion

    model = MotionDiffusion(motion_dim=M, unet_config=dict(block_channels=(8,), attention_levels=(False,),
                                                           layers_per_block=1, norm_groups=4))
    model.set_normalization(**stats)
    assert torch.equal(model.residual_std, stats["residual_std"])
