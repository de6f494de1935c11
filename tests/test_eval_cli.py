"""The `leo-video eval …` commands end to end on tiny video folders, with a scripted stand-in I3D.

FVD is checked against a closed-form answer (`test_eval_fvd_known_answer`); the other numbers against the
library functions on the same features or frames, which catches the commands' own bugs (wrong clips,
seeds, caches, a missing video); `eval all` against `eval fvd`/`eval kvd`; error paths through the CLI.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from leo_video.media.video import VideoReader, write_video
from leo_video.metrics import (
    feature_stats,
    frechet_distance_from_stats,
    i3d_features,
    kernel_distance,
    load_i3d,
    motion_report,
    plan_real_clips,
    video_acd,
)

NUM_VIDEOS, FRAMES, SIZE = 10, 16, 32


# Tolerance for numbers computed from float32 features (the detector, the stand-in embedder, rendered frames)
# by two different code paths: the CLI and the library batch clips differently (--batch-size, defaults), and
# BLAS / thread count change the summation order, so features agree to ~1e-7 relative (6e-8 measured on an
# FVD) and the distances built from them to ~1e-6. 1e-5 relative is float32 rounding with margin; the
# commands' real bugs (wrong clips, ddof, seeds, a missing video) move these numbers by percent.
FLOAT32_REL = 1e-5

FEATURE_DIM = 24  # I3D's is 400; the commands work for any D, and sqrtm of 400x400 takes seconds on 2 cores


class _StandInI3D(torch.nn.Module):
    """StyleGAN-V's detector call signature; features from per-frame colour statistics (B, FEATURE_DIM)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(9, FEATURE_DIM, generator=g))

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        frames = x.mean(dim=(3, 4)) / 255.0  # (B, 3, T) mean colour per frame
        steps = (frames[:, :, 1:] - frames[:, :, :-1]).abs().mean(dim=2)  # (B, 3)
        stats = torch.cat([frames.mean(dim=2), frames.std(dim=2), steps], dim=1)  # (B, 9)
        return torch.tanh(stats @ self.proj)  # (B, FEATURE_DIM)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Real and generated folders of NUM_VIDEOS tiny mp4s, a stand-in detector and motion codes."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    for side, shift in (("real", 0), ("fake", 40)):
        for i in range(NUM_VIDEOS):
            base = rng.integers(20, 200, size=(1, 1, 1, 3))
            ramp = np.linspace(0, rng.uniform(10, 50), FRAMES).reshape(FRAMES, 1, 1, 1)
            noise = rng.integers(0, 30, size=(FRAMES, SIZE, SIZE, 3))
            frames = np.clip(base + ramp + noise + shift, 0, 255).astype(np.uint8)  # (T, H, W, 3)
            write_video(root / side / f"v{i:02d}.mp4", frames, fps=25)
    (root / "empty").mkdir()
    detector = root / "i3d_torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch 2.x
        torch.jit.script(_StandInI3D()).save(str(detector))
    return root, detector


def _json(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == 1, out
    return json.loads(lines[0])


def _videos(folder):
    """Readers of every video in the folder (files and frame folders, natural order)."""
    from leo_video.metrics import list_videos

    return [VideoReader(p) for p in list_videos(folder)]


def _library_features(detector_path, folder, num_frames, seed=None):
    """Real clips (seeded offsets, via plan_real_clips) or generated clips (frames 0..) -> I3D features."""
    detector = load_i3d(detector_path)
    readers = _videos(folder)
    if seed is None:
        clips = [r.read(range(num_frames)) for r in readers]
    else:
        specs = plan_real_clips([len(r) for r in readers], 2048, num_frames, seed)
        clips = [readers[s.video_index].read(s.frame_indices) for s in specs]
    return i3d_features(detector, np.stack(clips))  # (N, FEATURE_DIM)


def test_eval_fvd_and_kvd_match_library_and_cache(folders, run_cli):
    root, detector = folders
    args = ["--real", root / "real", "--fake", root / "fake", "--detector", detector, "--frames", 8, "--seed", 3,
            "--cache-dir", root / "cache", "--device", "cpu"]
    code, out, err = run_cli("eval", "fvd", *args)
    assert code == 0, err
    result = _json(out)
    real = _library_features(detector, root / "real", 8, seed=3)
    fake = _library_features(detector, root / "fake", 8)
    expected = frechet_distance_from_stats(*feature_stats(real, ddof=0), *feature_stats(fake, ddof=0))
    assert result["fvd"] == pytest.approx(expected, rel=FLOAT32_REL)
    assert result["fvd"] > 0.1  # the folders differ (brightness shift)
    assert (result["num_real"], result["num_fake"]) == (NUM_VIDEOS, NUM_VIDEOS)
    assert result["protocol"]["num_frames"] == 8 and result["protocol"]["seed"] == 3
    assert result["protocol"]["name"] == "fvd16" and len(result["protocol_hash"]) == 16
    assert result["real_from_cache"] is False and "kvd" not in result
    # Second run reads the cached real features: same number.
    code, out, _ = run_cli("eval", "fvd", *args)
    again = _json(out)
    assert again["real_from_cache"] is True and again["real_cache"] == result["real_cache"]
    assert again["fvd"] == result["fvd"]  # the same features from the cache, same process: bit for bit
    code, out, err = run_cli("eval", "kvd", *args)
    assert code == 0, err
    assert _json(out)["kvd"] == pytest.approx(kernel_distance(real, fake), rel=FLOAT32_REL)


class _MeanColourI3D(torch.nn.Module):
    """A stand-in detector whose feature is the clip's mean colour in [0, 1] (B, 3): known by construction."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        return x.mean(dim=(2, 3, 4)) / 255.0  # (B, 3)


def _constant_colour_folder(folder, colours) -> None:
    """One lossless frame folder (4 PNG frames of 16²) per colour."""
    for i, colour in enumerate(colours):
        (folder / f"v{i}").mkdir(parents=True)
        for t in range(4):
            Image.fromarray(np.full((16, 16, 3), colour, np.uint8)).save(folder / f"v{i}" / f"{t:03d}.png")


def test_eval_fvd_known_answer(tmp_path, run_cli):
    """FVD (and KVD) of two feature sets whose statistics are known in closed form, not re-computed by the library.

    Real features are μ_r ± s·e_j (j = 1..3, six clips) and generated ones μ_g ± t·e_j: with ddof = 0 both
    covariances are (s²/3)·I and (t²/3)·I, so FVD = ‖μ_r − μ_g‖² + 3·(s/√3 − t/√3)² = ‖Δμ‖² + (s − t)².
    Fails on a wrong ddof (covariances (2/5)s²·I: 0.0166 instead of 0.0154), a dropped or repeated clip,
    a missing square root of the covariance product, or frames read in the wrong channel order.
    """
    mu_r, mu_g, s, t = np.array([100, 120, 140]), np.array([110, 100, 150]), 30, 10
    eye = np.eye(3, dtype=int)
    _constant_colour_folder(tmp_path / "real", [mu_r + sign * s * e for e in eye for sign in (1, -1)])
    _constant_colour_folder(tmp_path / "fake", [mu_g + sign * t * e for e in eye for sign in (1, -1)])
    detector = tmp_path / "mean_colour.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_MeanColourI3D()).save(str(detector))
    code, out, err = run_cli("eval", "fvd", "--real", tmp_path / "real", "--fake", tmp_path / "fake",
                             "--detector", detector, "--frames", 4, "--device", "cpu")
    assert code == 0, err
    expected = (np.sum((mu_r - mu_g) ** 2) + (s - t) ** 2) / 255.0**2  # 1000 / 255² = 0.015379
    result = _json(out)
    assert result["num_real"] == result["num_fake"] == 6
    assert result["fvd"] == pytest.approx(expected, rel=FLOAT32_REL)
    # KVD: the unbiased polynomial MMD² written out as a literal double loop over the known features
    real = [(mu_r + sign * s * e) / 255.0 for e in eye for sign in (1, -1)]
    fake = [(mu_g + sign * t * e) / 255.0 for e in eye for sign in (1, -1)]
    k = lambda x, y: (float(np.dot(x, y)) / 3 + 1) ** 3  # noqa: E731
    within = lambda xs: sum(k(x, y) for i, x in enumerate(xs) for j, y in enumerate(xs) if i != j) / 30  # noqa: E731
    mmd = within(real) + within(fake) - 2 * sum(k(x, y) for x in real for y in fake) / 36
    code, out, err = run_cli("eval", "kvd", "--real", tmp_path / "real", "--fake", tmp_path / "fake",
                             "--detector", detector, "--frames", 4, "--device", "cpu")
    assert code == 0, err
    assert _json(out)["kvd"] == pytest.approx(mmd, rel=1e-4)  # float32 features; kernel sums ~200x the MMD: ~1e-5 at worst (1e-7 measured)


def test_eval_fvd_identical_folders_is_zero(folders, run_cli):
    root, detector = folders
    # Full-length clips: the real offsets are all 0, so real and generated clips are the same frames.
    code, out, err = run_cli("eval", "fvd", "--real", root / "real", "--fake", root / "real", "--detector", detector,
                             "--frames", FRAMES)
    assert code == 0, err
    result = _json(out)
    # 10 clips in 24 dims: a rank-9 covariance, whose sqrtm is accurate to ~1e-6 only (the FVD of the
    # two different folders is > 0.1).
    assert abs(result["fvd"]) < 1e-4 and result["num_real"] == result["num_fake"] == NUM_VIDEOS
    code, out, _ = run_cli("eval", "kvd", "--real", root / "real", "--fake", root / "real", "--detector", detector,
                           "--frames", FRAMES)
    # The unbiased MMD² of a set with itself is not 0 but -2 (mean k(x, x) - mean k(x, y)) / (n - 1) < 0.
    feats = _library_features(detector, root / "real", FRAMES)
    assert _json(out)["kvd"] == pytest.approx(kernel_distance(feats, feats), rel=FLOAT32_REL)


def test_eval_fvd_reads_gifs_and_frame_folders(folders, tmp_path, run_cli):
    root, detector = folders
    mixed = tmp_path / "mixed"
    for i, reader in enumerate(_videos(root / "fake")[:6]):
        frames = reader.read(range(FRAMES))  # (T, H, W, 3)
        if i % 2:
            write_video(mixed / f"g{i}.gif", frames, fps=25)
        else:
            for t, frame in enumerate(frames):
                (mixed / f"f{i}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(frame).save(mixed / f"f{i}" / f"{t:03d}.png")
    code, out, err = run_cli("eval", "fvd", "--real", root / "real", "--fake", mixed, "--detector", detector,
                             "--frames", 8, "--batch-size", 4)
    assert code == 0, err
    result = _json(out)
    assert (result["num_real"], result["num_fake"], result["num_fake_videos"]) == (NUM_VIDEOS, 6, 6)
    real = _library_features(detector, root / "real", 8, seed=0)
    fake = _library_features(detector, mixed, 8)
    expected = frechet_distance_from_stats(*feature_stats(real, ddof=0), *feature_stats(fake, ddof=0))
    # The CLI's detector batch is 4, the library's its default: float32 features differ in the last bits.
    assert result["fvd"] == pytest.approx(expected, rel=FLOAT32_REL)


def test_eval_fvd_on_real_clips_of_mixed_sizes(folders, shared_data, run_cli):
    _, detector = folders
    faces, bodies = shared_data / "videos" / "faces", shared_data / "videos" / "fullbody"
    args = ["--real", faces, "--fake", bodies, "--detector", detector, "--num-videos", 3]
    code, out, err = run_cli("eval", "fvd", *args, "--resolution", 48)
    assert code == 0, err
    result = _json(out)
    assert (result["num_real"], result["num_fake"], result["protocol"]["resolution"]) == (3, 3, 48)
    assert result["fvd"] > 0
    # Without --resolution the full-body clips (1080x1920, 588x1044, ...) cannot be batched.
    code, _, err = run_cli("eval", "fvd", *args)
    assert code == 2 and f"--fake {bodies}" in err and "--resolution" in err


def test_eval_acd_mean_colour_matches_library(folders, run_cli):
    root, _ = folders
    code, out, err = run_cli("eval", "acd", "--videos", root / "fake", "--max-frames", 12)
    assert code == 0, err
    result = _json(out)
    frames = [r.read(range(12)) for r in _videos(root / "fake")]
    assert result["acd"] == pytest.approx(video_acd(frames), rel=1e-12)  # float64 from uint8 both sides
    assert (result["num_videos"], result["num_frames"], result["embedder"]) == (NUM_VIDEOS, NUM_VIDEOS * 12, "mean-colour")


def test_eval_acd_facenet_passes_weights_and_frames(folders, tmp_path, run_cli, monkeypatch):
    """The facenet path: weights and device reach load_face_embedder, frames reach it in [-1, 1].

    The network itself (and loading facenet-pytorch's file) is tested in test_metrics.py; a random
    InceptionResnetV1 would take ~30 s here, so a small stand-in embedder is used.
    """
    import leo_video.metrics.acd as acd
    from leo_video.media.image import numpy_to_frames

    root, _ = folders
    calls = []

    def embedder(frames: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) in [-1, 1] -> (N, 6)
        assert frames.min() >= -1 and frames.max() <= 1
        return torch.cat([frames.mean(dim=(2, 3)), frames.std(dim=(2, 3))], dim=1)

    def fake_loader(path, device="cpu"):
        calls.append((str(path), device))
        return embedder

    monkeypatch.setattr(acd, "load_face_embedder", fake_loader)
    weights = tmp_path / "20180402-114759-vggface2.pt"
    code, out, err = run_cli("eval", "acd", "--videos", root / "real", "--embedder", "facenet", "--weights", weights,
                             "--max-videos", 3, "--max-frames", 5, "--device", "cpu")
    assert code == 0, err
    result = _json(out)
    assert calls == [(str(weights), "cpu")]
    frames = [numpy_to_frames(r.read(range(5))) for r in _videos(root / "real")[:3]]  # (5, 3, H, W) in [-1, 1]
    assert result["acd"] == pytest.approx(video_acd(frames, embedder), rel=FLOAT32_REL)  # float32 embedder
    assert (result["num_videos"], result["num_frames"], result["embedder"]) == (3, 15, "facenet")


def _codes(seed: int, scale: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cumsum(torch.randn(12, 40, 3, generator=g) * scale, dim=1)  # (N, T, M)


def test_eval_motion_from_files_and_store(tmp_path, run_cli):
    from safetensors.torch import save_file

    from leo_video.data.motion_codes import MotionCodeWriter

    real, fake = _codes(0, 0.1), _codes(1, 0.3)
    save_file({"codes": real}, str(tmp_path / "real.safetensors"))
    torch.save(fake, tmp_path / "fake.pt")
    with MotionCodeWriter(tmp_path / "store", motion_dim=3) as writer:
        for i, seq in enumerate(real):
            writer.add(f"video{i}", seq)
    expected = motion_report(list(real.double().numpy()), list(fake.double().numpy()), window=8)
    for real_arg in (tmp_path / "real.safetensors", tmp_path / "store"):
        code, out, err = run_cli("eval", "motion", "--real", real_arg, "--fake", tmp_path / "fake.pt", "--window", 8)
        assert code == 0, err
        result = _json(out)
        for key, value in expected.items():
            # float64 on the same float32 codes (the CLI casts as the test does): reference parity stays tight
            assert result[key] == pytest.approx(value, rel=1e-9), key
    assert expected["jitter_ratio"] == pytest.approx(3.0, rel=0.15)


class _StubAnimator(torch.nn.Module):
    """The animator interface transfer_motion uses (a real LIA takes ~5 s a frame on 2 busy cores)."""

    def __init__(self) -> None:
        super().__init__()
        self.config = type("Config", (), {"size": 32})()
        self.gain = torch.nn.Parameter(torch.tensor(0.5))

    def encode_appearance(self, source: torch.Tensor) -> torch.Tensor:
        return source  # (1, 3, S, S)

    def encode_motion(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.mean(dim=(2, 3))  # (n, 3)

    def render(self, appearance: torch.Tensor, codes: torch.Tensor, start_motion=None) -> torch.Tensor:
        return (appearance + self.gain * codes[:, :, None, None]).clamp(-1, 1)  # (n, 3, S, S)


def test_eval_recon_matches_reconstruct_command(folders, tmp_path, run_cli, monkeypatch):
    import leo_video.models.loading as loading

    root, _ = folders
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu", dtype=None: _StubAnimator())
    code, out, err = run_cli("eval", "recon", "--checkpoint", tmp_path / "lia", "--data", root / "real",
                             "--max-videos", 3, "--frames", 7, "--batch-frames", 3, "--device", "cpu")
    assert code == 0, err
    result = _json(out)
    assert (result["num_videos"], result["num_frames"]) == (3, 21)
    singles, stills = [], []
    for path in sorted((root / "real").glob("*.mp4"))[:3]:
        code, out, err = run_cli("reconstruct", "--checkpoint", tmp_path / "lia", "--video", path, "--max-frames", 7,
                                 "--device", "cpu")
        assert code == 0, err
        singles.append(_json(out)["l1"])
        stills.append(_json(out)["still_l1"])
    # float32 sums over batches of 3 (eval recon) and 16 (reconstruct) frames
    assert list(result["per_video"].values()) == pytest.approx(singles, rel=FLOAT32_REL)
    assert list(result["still_per_video"].values()) == pytest.approx(stills, rel=FLOAT32_REL)
    assert result["still_l1"] == pytest.approx(np.mean(stills), rel=FLOAT32_REL) and result["still_l1"] != result["l1"]
    assert result["l1"] == pytest.approx(np.mean(singles), rel=FLOAT32_REL) and 0 < result["l1"] < 1
    # A dataset folder with train/test splits is evaluated on its test split only.
    for split, count in (("train", 3), ("test", 2)):
        for path in sorted((root / "real").glob("*.mp4"))[:count]:
            (tmp_path / "dataset" / split).mkdir(parents=True, exist_ok=True)
            (tmp_path / "dataset" / split / path.name).symlink_to(path)
    code, out, err = run_cli("eval", "recon", "--checkpoint", tmp_path / "lia", "--data", tmp_path / "dataset",
                             "--frames", 2, "--device", "cpu")
    assert code == 0, err
    assert _json(out)["num_videos"] == 2 and _json(out)["data"] == str(tmp_path / "dataset" / "test")


def test_eval_recon_by_motion(folders, tmp_path, run_cli, monkeypatch):
    """--by-motion: equal groups of frames ordered by the still's error, which together are the pooled frames, and
    the source's own rendering error (frame 0), computed here from the stub's formula."""
    import leo_video.models.loading as loading
    from leo_video.pipelines.animate import frames_to_batch

    root, _ = folders
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu", dtype=None: _StubAnimator())
    code, out, err = run_cli("eval", "recon", "--checkpoint", tmp_path / "lia", "--data", root / "real",
                             "--max-videos", 2, "--frames", 9, "--batch-frames", 4, "--no-shuffled", "--by-motion",
                             "--device", "cpu")
    assert code == 0, err
    result = _json(out)
    groups = result["by_motion"]
    assert [g["frames"] for g in groups] == [5, 5, 4, 4]  # 18 frames in four groups
    assert all(a["still_to"] <= b["still_from"] for a, b in zip(groups, groups[1:]))
    assert groups[0]["still_from"] == 0  # the first frames: the still is exact there
    pooled = sum(g["l1"] * g["frames"] for g in groups) / 18  # videos of equal length: the mean of video means
    assert pooled == pytest.approx(result["l1"], rel=FLOAT32_REL)
    sources = []
    for path in sorted((root / "real").glob("*.mp4"))[:2]:
        with VideoReader(path) as reader:
            first = frames_to_batch(list(reader.iter_frames(stop=1)), 32, torch.device("cpu")).double()
        drawn = (first + 0.5 * first.mean(dim=(2, 3))[:, :, None, None]).clamp(-1, 1)
        sources.append(float((drawn - first).abs().mean() / 2))
    assert result["source_l1"] == pytest.approx(np.mean(sources), rel=FLOAT32_REL) and result["source_l1"] > 0

    plot = tmp_path / "by_motion.png"  # --plot implies --by-motion and draws it
    args = ("eval", "recon", "--checkpoint", tmp_path / "lia", "--data", root / "real", "--max-videos", 2,
            "--frames", 9, "--no-shuffled", "--plot", plot, "--device", "cpu")
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert _json(out)["by_motion"] == groups and Image.open(plot).size == (640, 380)
    code, out, err = run_cli(*args)
    assert code != 0 and "exists; pass --overwrite" in err and len(err.strip().splitlines()) == 1


def test_eval_recon_moved_pixels(folders, tmp_path, run_cli, monkeypatch):
    """moved_l1 / moved_still_l1: the L1 of the reconstruction and of the still over the pixels whose colour differs
    from frame 0 by more than MOVED_THRESHOLD on [0, 1], pooled over every frame of every video; recomputed here
    from the stub's formula (the same float32 arithmetic picks the same pixels)."""
    import leo_video.models.loading as loading
    from leo_video.metrics.recon import MOVED_THRESHOLD
    from leo_video.pipelines.animate import frames_to_batch

    root, _ = folders
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu", dtype=None: _StubAnimator())
    code, out, err = run_cli("eval", "recon", "--checkpoint", tmp_path / "lia", "--data", root / "real",
                             "--max-videos", 2, "--frames", 9, "--batch-frames", 4, "--no-shuffled", "--device", "cpu")
    assert code == 0, err
    result = _json(out)
    pixels, drawn, still = 0, 0.0, 0.0
    for path in sorted((root / "real").glob("*.mp4"))[:2]:
        with VideoReader(path) as reader:
            x = frames_to_batch(list(reader.iter_frames(stop=9)), 32, torch.device("cpu"))  # (9, 3, 32, 32)
        recon = (x[:1] + 0.5 * x.mean(dim=(2, 3))[:, :, None, None]).clamp(-1, 1)
        still_error = ((x[:1] - x).abs() / 2).mean(1)
        mask = still_error > MOVED_THRESHOLD
        pixels += int(mask.sum())
        drawn += float(((recon - x).abs() / 2).mean(1)[mask].double().sum())
        still += float(still_error[mask].double().sum())
    assert pixels > 0 and result["moved_share"] == pytest.approx(pixels / (18 * 32 * 32))
    assert result["moved_l1"] == pytest.approx(drawn / pixels, rel=FLOAT32_REL)
    assert result["moved_still_l1"] == pytest.approx(still / pixels, rel=FLOAT32_REL)
    assert result["moved_still_l1"] > MOVED_THRESHOLD  # every counted pixel is that far off in the still
    assert result["moved_l1_over_still"] == pytest.approx(drawn / still, rel=FLOAT32_REL)


def test_eval_recon_sheet(folders, tmp_path, run_cli, monkeypatch):
    """--sheet: for the first 3 videos, rows original / reconstruction / still at 8 evenly spaced frames (of
    --frames), each the frames the error was measured on; written once, refused without --overwrite."""
    import leo_video.media.grid as grid
    import leo_video.models.loading as loading
    from leo_video.pipelines.animate import frames_to_batch

    root, _ = folders
    stub = _StubAnimator()
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu", dtype=None: stub)
    shown = {}
    real_save = grid.save_contact_sheet
    monkeypatch.setattr(grid, "save_contact_sheet",
                        lambda path, videos, num_frames, labels: shown.update(videos=videos, labels=labels)
                        or real_save(path, videos, num_frames=num_frames, labels=labels))
    sheet = tmp_path / "recon_sheet.png"
    args = ("eval", "recon", "--checkpoint", tmp_path / "lia", "--data", root / "real", "--max-videos", 4,
            "--frames", 11, "--batch-frames", 4, "--no-shuffled", "--sheet", sheet, "--device", "cpu")
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert _json(out)["num_videos"] == 4 and Image.open(sheet).size[1] > 9 * 32
    paths = sorted((root / "real").glob("*.mp4"))[:3]
    assert shown["labels"] == [label for p in paths for label in (f"{p.name} original", "reconstruction", "still")]
    picked = [0, 1, 3, 4, 6, 7, 9, 10]  # 8 evenly spaced of 11 frames
    for k, path in enumerate(paths):
        with VideoReader(path) as reader:
            frames = frames_to_batch(list(reader.iter_frames(stop=11)), 32, torch.device("cpu"))[picked]
        original, reconstruction, still = shown["videos"][3 * k : 3 * k + 3]
        with torch.no_grad():
            expected = stub.render(stub.encode_appearance(frames[:1]), stub.encode_motion(frames))
        torch.testing.assert_close(original, frames, rtol=0, atol=0)
        torch.testing.assert_close(reconstruction, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(still, frames[:1].expand_as(frames), rtol=0, atol=0)
    code, out, err = run_cli(*args)
    assert code != 0 and "exists; pass --overwrite" in err and len(err.strip().splitlines()) == 1


def test_errors_by_motion_groups():
    from leo_video.metrics.recon import errors_by_motion

    still = [0.0, 0.4, 0.1, 0.3, 0.2, 0.5]
    rendered = [0.1, 0.2, 0.1, 0.2, 0.1, 0.2]
    groups = errors_by_motion(rendered, still, bins=2)
    assert [g["frames"] for g in groups] == [3, 3]
    assert groups[0]["still_l1"] == pytest.approx(0.1) and groups[0]["l1"] == pytest.approx(0.1)
    assert groups[1]["still_l1"] == pytest.approx(0.4) and groups[1]["l1_over_still"] == pytest.approx(0.5)
    assert (groups[0]["still_from"], groups[1]["still_to"]) == (0.0, 0.5)
    assert errors_by_motion([], []) == []


def test_eval_recon_shuffled_codes_baseline(folders, tmp_path, run_cli, monkeypatch):
    """Every frame rendered with the code of frame perm[i] (perm = default_rng(0)'s permutation), computed here
    from the stub's formula; an animator that ignores its codes scores the same with and without shuffling."""
    import leo_video.models.loading as loading
    from leo_video.pipelines.animate import frames_to_batch

    root, _ = folders
    stub = _StubAnimator()
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu", dtype=None: stub)
    args = ("eval", "recon", "--checkpoint", tmp_path / "lia", "--data", root / "real", "--max-videos", 2,
            "--frames", 9, "--batch-frames", 4, "--device", "cpu")
    code, out, err = run_cli(*args)
    assert code == 0, err
    result = _json(out)
    expected = []
    for path in sorted((root / "real").glob("*.mp4"))[:2]:
        with VideoReader(path) as reader:
            frames = frames_to_batch(list(reader.iter_frames(stop=9)), 32, torch.device("cpu")).double()
        codes = frames.mean(dim=(2, 3))[np.random.default_rng(0).permutation(9)]  # (9, 3), shuffled
        rendered = (frames[:1] + 0.5 * codes[:, :, None, None]).clamp(-1, 1)
        expected.append(float((rendered - frames).abs().mean() / 2))
    assert list(result["shuffled_per_video"].values()) == pytest.approx(expected, rel=FLOAT32_REL)
    assert result["shuffled_l1"] == pytest.approx(np.mean(expected), rel=FLOAT32_REL) != result["l1"]
    assert result["l1_over_shuffled"] == pytest.approx(result["l1"] / result["shuffled_l1"], rel=1e-12)

    stub.gain.data.zero_()  # codes ignored: shuffling them changes nothing
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert _json(out)["shuffled_l1"] == pytest.approx(_json(out)["l1"], rel=FLOAT32_REL)
    code, out, err = run_cli(*args, "--no-shuffled")
    assert code == 0, err
    assert "shuffled_l1" not in _json(out)


def test_eval_all_writes_report(folders, tmp_path, run_cli):
    root, detector = folders
    common = ["--real", root / "real", "--fake", root / "fake", "--detector", detector, "--frames", 8, "--seed", 5]
    codes = tmp_path / "codes.safetensors"
    from safetensors.torch import save_file

    save_file({"a": _codes(0, 0.1), "b": _codes(1, 0.1)}, str(codes))
    code, out, err = run_cli("eval", "all", *common, "--out", tmp_path / "report", "--runs", 2,
                             "--real-codes", codes, "--fake-codes", codes, "--window", 8)
    assert code == 0, err
    report_dir = tmp_path / "report"
    report = json.loads((report_dir / "report.json").read_text())
    by_key = {m["key"]: m for m in report["metrics"]}
    fvd_runs = []
    for seed in (5, 6):  # --runs 2: seeds 5 and 6 for the real clips
        _, out, _ = run_cli("eval", "fvd", *common[:-1], seed)
        fvd_runs.append(_json(out)["fvd"])
    # eval all and eval fvd may batch the detector differently: float32 features
    assert by_key["fvd"]["values"] == pytest.approx(fvd_runs, rel=FLOAT32_REL)
    assert by_key["fvd"]["mean"] == pytest.approx(np.mean(fvd_runs), rel=FLOAT32_REL)
    # the std of two close FVDs cancels: its error is the FVDs' absolute error, not relative to the std
    assert by_key["fvd"]["std"] == pytest.approx(np.std(fvd_runs, ddof=1), rel=FLOAT32_REL,
                                                 abs=FLOAT32_REL * np.mean(fvd_runs))
    assert by_key["code_window_fd"]["value"] == pytest.approx(0.0, abs=1e-6)  # same codes on both sides
    assert report["protocol"]["hash"] and report["protocol"]["runs"] == 2
    md = (report_dir / "report.md").read_text()
    assert "fvd16" in md and "## Protocol" in md and report["protocol"]["hash"] in md
    assert f"{NUM_VIDEOS} real / {NUM_VIDEOS} generated clips of 8 frames" in md
    assert f"{NUM_VIDEOS} videos, {NUM_VIDEOS * 8} frames" in md  # ACD sample count
    pngs = [p["file"] for p in report["plots"] + report["samples"]]
    assert {"fvd.png", "kvd.png", "acd.png", "jitter.png", "samples_real.png", "samples_generated.png"} <= set(pngs)
    for name in pngs:
        assert f"]({name})" in md
        with Image.open(report_dir / name) as image:
            image.verify()
    # An existing report is not overwritten without --overwrite.
    code, _, err = run_cli("eval", "all", *common, "--out", report_dir)
    assert code != 0 and "report.json" in err and "--overwrite" in err


def test_eval_errors_are_one_line(folders, tmp_path, run_cli, monkeypatch):
    root, detector = folders
    monkeypatch.delenv("LEO_I3D", raising=False)
    cases = [
        (["fvd", "--real", root / "real", "--fake", root / "fake", "--detector", tmp_path / "missing.pt"],
         str(tmp_path / "missing.pt")),
        (["kvd", "--real", root / "real", "--fake", root / "fake", "--detector", tmp_path / "gone.pt"],
         str(tmp_path / "gone.pt")),
        (["fvd", "--real", root / "empty", "--fake", root / "fake", "--detector", detector], str(root / "empty")),
        (["fvd", "--real", root / "real", "--fake", tmp_path / "nope", "--detector", detector], str(tmp_path / "nope")),
        (["fvd", "--real", root / "real", "--fake", root / "fake", "--detector", detector, "--frames", 17],
         str(root / "fake")),
        (["acd", "--videos", root / "empty"], str(root / "empty")),
        (["acd", "--videos", root / "real", "--embedder", "facenet"], "vggface2.pt"),
        (["motion", "--real", tmp_path / "none.pt", "--fake", tmp_path / "none.pt"], str(tmp_path / "none.pt")),
        (["all", "--real", root / "empty", "--fake", root / "fake", "--detector", detector, "--out", tmp_path / "r"],
         str(root / "empty")),
    ]
    cases += [
        (["all", "--real", root / "real", "--fake", root / "fake", "--detector", detector, "--out", tmp_path / "r",
          "--acd-embedder", "facenet"], "vggface2.pt"),
        (["all", "--real", root / "real", "--fake", root / "fake", "--detector", detector, "--out", tmp_path / "r",
          "--real-codes", tmp_path / "codes", "--fake-codes", tmp_path / "codes"], str(tmp_path / "codes")),
    ]
    for argv, named in cases:
        code, out, err = run_cli("eval", *argv)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"leo-video eval {argv[0]}: error:") and named in lines[0], err
    assert not (tmp_path / "r" / "report.json").exists()


def test_eval_group_lists_its_commands(run_cli):
    code, out, _ = run_cli("eval")
    assert code == 2
    for name in ("fvd", "kvd", "acd", "motion", "recon", "all", "transfer"):
        assert f"    {name} " in out, out
