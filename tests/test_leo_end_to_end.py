"""The whole LEO on the synthetic humans, through the real commands, on CPU (issue 6, "Proof").

make-synthetic → train lia → export → encode-motion → train lmdm + train alpha-prior + train cddpm →
assemble → generate (conditional and unconditional) → from_pretrained round trip → edit.

Every stage is trained for a few dozen steps with tiny networks, so the videos are blurry; what is
checked is that the parts fit together (files, frame counts, shapes, determinism) and that editing
keeps the motion by construction: the edited video's latents move exactly as the original's codes do
relative to its first frame (w_i − w_1 = Q(α_i − α_1)). Whether re-encoding the edited video gives back
the original's relative codes is measured and printed (``-s``), not asserted: an animator trained for
40 steps (or 300) renders nearly static frames, so its re-encoded relative codes are as far from the
original's as no motion at all. That check needs a well-trained animator.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from leo_video.media.image import load_image
from leo_video.media.video import VideoReader
from leo_video.models.lia import LatentImageAnimator
from leo_video.models.loading import load_lia
from leo_video.pipelines.encode import encode_video
from leo_video.pipelines.leo import LEOPipeline

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

VIDEOS, FRAMES, SIZE = 8, 24, 64  # 6 train + 2 test videos
L = 8  # cLMDM clip length: generated videos longer than L are sampled autoregressively
LIA_STEPS = 40  # renders blurry but well-formed frames; motion fidelity would need thousands
TIMINGS: dict[str, float] = {}


def sets(*settings: str) -> list[str]:
    """``--set`` arguments."""
    return [arg for s in settings for arg in ("--set", s)]


def run(run_cli, label: str, *argv) -> str:
    """Run one command; it must succeed. Returns its stdout and records its wall time."""
    start = time.perf_counter()
    code, out, err = run_cli(*argv)
    TIMINGS[label] = time.perf_counter() - start
    assert code == 0, f"{label}: {err}"
    return out


def frames_of(path: Path) -> np.ndarray:
    """All frames of a video file or frame folder, (T, H, W, 3) uint8."""
    return np.stack(list(VideoReader(path).iter_frames()))


def to_tensor(frame: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 -> (3, S, S) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 127.5 - 1


def codes_of(animator: LatentImageAnimator, path: Path) -> torch.Tensor:
    """The animator's motion codes of every frame of a video, (T, M)."""
    return torch.cat(list(encode_video(animator, VideoReader(path))))


def relative(codes: torch.Tensor) -> torch.Tensor:
    """α_i − α_1: motion relative to the first frame, (T, M)."""
    return codes - codes[:1]


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """RMS difference of two relative code sequences (T, M), ignoring the first (zero) row."""
    return (a[1:] - b[1:]).pow(2).mean().sqrt().item()


# --------------------------------------------------------------------------------------------------
# Training every part through the CLI


def train_everything(run_cli, tmp: Path) -> dict[str, Path]:
    """Data, the four trained parts and the assembled pipeline, all under ``tmp``."""
    data, runs = tmp / "synthetic", tmp / "runs"
    run(run_cli, "make-synthetic", "make-synthetic", "--out", data, "--videos", VIDEOS, "--frames", FRAMES,
        "--size", SIZE, "--test-fraction", 0.25, "--seed", 0, "--format", "frames")  # fmt: skip
    assert len(list((data / "train").iterdir())) == 6 and len(list((data / "test").iterdir())) == 2

    loop = ["train.cpu=true", "train.log_every=5", "train.image_every=0"]
    run(run_cli, "train lia", "train", "lia", "--config", "synthetic64", "--run-dir", runs / "lia",
        *sets(f"data.root={data}", "model.channel_max=16", "model.style_dim=32", f"train.max_steps={LIA_STEPS}",
              "train.batch_size=4", f"train.checkpoint_every={LIA_STEPS}", *loop))  # fmt: skip
    lia = tmp / "lia"
    run(run_cli, "export", "export", "--checkpoint", runs / "lia", "--out", lia)

    codes = tmp / "codes"
    out = run(run_cli, "encode-motion", "encode-motion", "--checkpoint", lia, "--data", data, "--out", codes,
              "--device", "cpu")  # fmt: skip
    assert f'"videos": {VIDEOS}' in out

    diffusion = ["optim.warmup_steps=0", "train.batch_size=8", "train.checkpoint_every=1000", *loop]
    run(run_cli, "train lmdm", "train", "lmdm", "--codes", codes, "--run-dir", runs / "lmdm",
        *sets("model.preset=tiny", f"model.sequence_length={L}", "optim.lr=2e-3", "train.max_steps=30",
              *diffusion))  # fmt: skip
    run(run_cli, "train alpha-prior", "train", "alpha-prior", "--codes", codes, "--run-dir", runs / "prior",
        *sets("model.preset=tiny", "optim.lr=2e-3", "train.max_steps=30", *diffusion))  # fmt: skip
    run(run_cli, "train cddpm", "train", "cddpm", "--data", data, "--lia", lia, "--run-dir", runs / "cddpm",
        *sets("model.preset=tiny", "model.sample_size=32", "data.stats_frames=16", "optim.lr=1e-3",
              "train.max_steps=20", *diffusion))  # fmt: skip

    pipe = tmp / "pipe"
    out = run(run_cli, "assemble", "assemble", "--lia", lia, "--lmdm", runs / "lmdm" / "export", "--prior",
              runs / "prior" / "export", "--cddpm", runs / "cddpm" / "export", "--steps", 3, "--fps", 10,
              "--out", pipe)  # fmt: skip
    assert "animator, motion, start_code, start_frame" in out  # the part folders written
    return {"data": data, "lia": lia, "pipe": pipe}


# --------------------------------------------------------------------------------------------------
# The proof


def test_leo_end_to_end(run_cli, tmp_path):
    paths = train_everything(run_cli, tmp_path)
    data, lia, pipe_dir = paths["data"], paths["lia"], paths["pipe"]
    test_videos = sorted((data / "test").iterdir())  # PNG frame folders
    still = tmp_path / "still.png"
    Image.fromarray(frames_of(test_videos[0])[0]).save(still)

    # generate: conditional from a synthetic still (20 frames > L: autoregressive), unconditional x2
    run(run_cli, "generate cond", "generate", "--pipeline", pipe_dir, "--source", still, "--frames", 20,
        "--steps", 2, "--out", tmp_path / "cond.mp4", "--device", "cpu")  # fmt: skip
    run(run_cli, "generate uncond", "generate", "--pipeline", pipe_dir, "--frames", 12, "--num-videos", 2,
        "--steps", 2, "--out", tmp_path / "uncond.mp4", "--device", "cpu")  # fmt: skip
    cond = frames_of(tmp_path / "cond.mp4")
    assert cond.shape == (20, SIZE, SIZE, 3) and cond.std() > 0
    uncond = [frames_of(tmp_path / f"uncond_{k:03d}.mp4") for k in range(2)]
    for video in uncond:
        assert video.shape == (12, SIZE, SIZE, 3) and video.std() > 0
    assert not np.array_equal(uncond[0], uncond[1])  # two draws, two start frames and motions
    assert VideoReader(tmp_path / "cond.mp4").info.fps == pytest.approx(10)  # the pipeline's stored default
    # from_pretrained twice, the same seed: identical videos (conditional and unconditional)
    image = load_image(still, size=SIZE)  # (3, S, S) in [-1, 1]
    videos = []
    for _ in range(2):
        pipe = LEOPipeline.from_pretrained(pipe_dir)
        generator = torch.Generator().manual_seed(7)
        videos.append((pipe(image, num_frames=10, generator=generator, steps=2),
                       pipe(None, num_frames=10, num_videos=2, generator=generator, steps=2)))  # fmt: skip
    for a, b in zip(*videos):
        assert a.shape[1] == 10 and a.shape[-1] == SIZE and a.abs().max() <= 1
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(videos[0][0][0], videos[0][1][0])  # the unconditional start is not the still

    # a conditional video starts at the animator's reconstruction of the still: frame 1 renders w(x₁) + Q E(x₁)
    with torch.no_grad():
        reconstruction = pipe.animator(image[None], image[None])[0].clamp(-1, 1)  # (3, S, S)
    torch.testing.assert_close(videos[0][0][0, 0], reconstruction, rtol=0, atol=1e-4)
    written = to_tensor(cond[0])  # the .mp4's first frame
    codec_error = (written - reconstruction).abs().mean().item()
    assert codec_error < 0.05, codec_error  # measured 0.011-0.022 (H.264 at 64²); an uncond start frame: 0.16

    distances = check_edit(run_cli, lia, test_videos, tmp_path)
    print("\nend-to-end timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items()))
    print("edit, RMS distance of relative codes to the original's: "
          + ", ".join(f"{k} {v:.4f}" for k, v in distances.items()))


def check_edit(run_cli, lia: Path, test_videos: list[Path], tmp: Path) -> dict[str, float]:
    """edit: the original's motion relative to its first frame, rendered on a recoloured first frame.

    Asserted: the renderer's latents move exactly as the original's codes do, ``w_i − w_1 = Q(α_i − α_1)``,
    from the edited frame's own latent, and the output starts at the rendering of the edited frame.
    Measured (returned, not asserted): relative-code distances after re-encoding the edited video, which
    need a well-trained animator.
    """
    original = test_videos[0]
    first = frames_of(original)[0]  # (S, S, 3) uint8
    recoloured = np.ascontiguousarray(first[..., ::-1])  # RGB -> BGR
    edited_png = tmp / "edited.png"
    Image.fromarray(recoloured).save(edited_png)

    received = []  # (appearance latent, its own code, codes α_i, start code, latents): what rendering used
    latent_from_motion = LatentImageAnimator.latent_from_motion

    def spy(self, appearance, motion_codes, start_motion=None):
        latents = latent_from_motion(self, appearance, motion_codes, start_motion)
        received.append((appearance.latent, appearance.motion, motion_codes, start_motion, latents))
        return latents

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LatentImageAnimator, "latent_from_motion", spy)
        run(run_cli, "edit", "edit", "--lia", lia, "--video", original, "--edited-first-frame", edited_png,
            "--out", tmp / "edited.mp4", "--batch-frames", 10, "--device", "cpu")  # fmt: skip
    edited = frames_of(tmp / "edited.mp4")
    assert edited.shape == (FRAMES, SIZE, SIZE, 3)
    assert len(received) == 3  # 24 frames in batches of 10

    animator = load_lia(lia)
    exact = {"rtol": 1e-5, "atol": 1e-5}
    with torch.no_grad():
        alpha = codes_of(animator, original)  # (T, M), the original's motion
        direction = lambda codes: animator.dec.direction(codes, animator.motion_directions())  # Q α, (N, style)
        edited_image = to_tensor(recoloured)[None]  # (1, 3, S, S)
        edited_latent = animator.encode_appearance(edited_image).latent  # (1, style)
        codes = torch.cat([r[2] for r in received])  # (T, M)
        latents = torch.cat([r[4] for r in received])  # (T, style)
        torch.testing.assert_close(codes, alpha, **exact)  # the original's codes ...
        for app_latent, app_motion, _, start, _ in received:  # ... relative to its first code, on the edit
            torch.testing.assert_close(start.reshape(-1), alpha[0], **exact)
            torch.testing.assert_close(app_latent, edited_latent, **exact)
        # the edited video's latent path is the original's motion, w_i − w_1 = Q(α_i − α_1),
        # starting from the edited frame's own latent w(edit) + Q E(edit)
        torch.testing.assert_close(latents - latents[:1], direction(alpha) - direction(alpha[:1]), **exact)
        torch.testing.assert_close(latents[:1], edited_latent + direction(received[0][1]), **exact)

        # measured: re-encode the edited video and compare motion relative to the first frame
        beta = codes_of(animator, tmp / "edited.mp4")  # (T, M)
        other = codes_of(animator, test_videos[1])  # a different video of the same length
        # the output starts at the animator's rendering of the recoloured frame, not of the original one
        original_image = to_tensor(first)[None]  # (1, 3, S, S)
        rendered = {name: animator(x, x)[0].clamp(-1, 1) for name, x in
                    (("edited", edited_image), ("original", original_image))}  # fmt: skip
    written = to_tensor(edited[0])  # (3, S, S)
    error = {name: (written - x).abs().mean().item() for name, x in rendered.items()}
    # codec error only (measured 0.012); how far apart the two renderings are depends on how colour-faithful
    # the briefly trained animator came out (0.019 here, 0.02-0.11 in other runs), so it is not asserted
    assert error["edited"] < 0.06, error
    return {"edited": distance(relative(beta), relative(alpha)),
            "time-reversed original": distance(relative(alpha.flip(0)), relative(alpha)),
            "other video": distance(relative(other), relative(alpha)),
            "no motion": relative(alpha)[1:].pow(2).mean().sqrt().item()}
