"""Memory does not grow with video length: `animate`, `generate` and `encode-motion` at 100 vs 2,000 frames.

Each length runs in a child process that executes the three commands in turn (tiny random models,
64x64, one thread) and records each command's peak resident memory: ``/proc/self/clear_refs`` resets
the peak (``VmHWM``) before a command, ``/proc/self/status`` reads it after. The same commands in the
same order run at both lengths, so imports and model loading cancel out and what remains is what the
frames cost.

For scale: holding the 2,000 frames would cost 24.6 MB as uint8 ``(T, 64, 64, 3)`` and 98 MB as float32
``(T, 3, 64, 64)``; the allowed growth is 8 MB. glibc keeps freed heap pages (its peak would rise for the
first few hundred frames from fragmentation alone, measured +43 MB over 640 frames of `encode-motion`),
so the children set ``MALLOC_MMAP_THRESHOLD_``: large blocks are then mapped and returned on free and
the peak measures live memory. Measured (2 busy CPU cores): peaks within -2.5 ... +1.0 MB of each other for
each command; with a deliberate regression (``VideoReader.iter_frames`` returning a list) animate grew by
+26 MB and encode-motion by +22 MB, and this test failed. About 40-50 s on 2 busy cores, most of it the
2,000-frame runs (tiny 4-channel LIA: convolutions dominate).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

LENGTHS = (100, 2000)
MAX_GROWTH_MB = 8.0

CHILD = """
import json, sys, time
from leo_video.cli.main import main

def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

peaks = {}
for name, argv in json.loads(sys.argv[1]).items():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak resident set size to the current one
    start = time.perf_counter()
    code = main(argv)
    peaks[name] = {"code": code, "peak_mb": peak_kb() / 1024, "seconds": time.perf_counter() - start}
print(json.dumps(peaks))
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny random LIA (64², M = 6, 4 channels) and cLMDM (L = 32), exported; a 64x64 source image."""
    from leo_video.diffusion.motion import MotionDiffusion
    from leo_video.media.image import save_image
    from leo_video.models.lia import LatentImageAnimator

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    LatentImageAnimator(size=64, style_dim=8, motion_dim=6, channel_max=4).save_pretrained(root / "lia")
    MotionDiffusion.from_preset("tiny", motion_dim=6, sequence_length=32).save_pretrained(root / "lmdm")
    save_image(root / "source.png", torch.rand(3, 64, 64) * 2 - 1)
    return {"lia": root / "lia", "lmdm": root / "lmdm", "source": root / "source.png"}


def write_driving_video(path: Path, num_frames: int) -> None:
    """A 64x64 mp4 of a random texture sliding one pixel per frame, written 100 frames at a time."""
    from leo_video.media.video import VideoWriter

    texture = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with VideoWriter(path, fps=25) as writer:
        for start in range(0, num_frames, 100):
            writer.write(np.stack([np.roll(texture, t, axis=1) for t in range(start, min(start + 100, num_frames))]))


def command_lines(models: dict[str, Path], data: Path, out: Path, num_frames: int) -> dict[str, list[str]]:
    video = data / "drive.mp4"
    return {
        "animate": ["animate", "--checkpoint", models["lia"], "--source", models["source"], "--driving", video,
                    "--out", out / "animate.mp4", "--device", "cpu"],
        "generate": ["generate", "--lia", models["lia"], "--lmdm", models["lmdm"], "--source", models["source"],
                     "--frames", str(num_frames), "--steps", "2", "--out", out / "generate.mp4", "--device", "cpu"],
        "encode-motion": ["encode-motion", "--checkpoint", models["lia"], "--data", data, "--out", out / "codes",
                          "--device", "cpu"],
    }  # fmt: skip


@pytest.fixture(scope="module")
def peaks(models, tmp_path_factory) -> dict[int, dict[str, dict]]:
    """``{num_frames: {command: {"code", "peak_mb"}}}`` from one child process per length."""
    from leo_video.media.video import probe_video

    results = {}
    for num_frames in LENGTHS:
        root = tmp_path_factory.mktemp(f"frames{num_frames}")
        (root / "data").mkdir()
        write_driving_video(root / "data" / "drive.mp4", num_frames)
        lines = command_lines(models, root / "data", root, num_frames)
        argv = {name: [str(a) for a in line] for name, line in lines.items()}
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LEO_PROGRESS": "0", "MALLOC_MMAP_THRESHOLD_": "65536"}
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argv)], capture_output=True, text=True,
                              env=env, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[num_frames] = json.loads(proc.stdout.strip().splitlines()[-1])
        # the outputs really have the length (a streamed writer that stopped early would also be flat)
        assert probe_video(root / "animate.mp4").frames == num_frames
        assert probe_video(root / "generate.mp4").frames == num_frames
        from leo_video.data.motion_codes import MotionCodeStore

        store = MotionCodeStore(root / "codes")
        assert store.codes(store.names[0]).shape == (num_frames, 6)
    return results


@pytest.mark.parametrize("command", ["animate", "generate", "encode-motion"])
def test_peak_memory_does_not_grow_with_video_length(peaks, command):
    short, long = (peaks[n][command] for n in LENGTHS)
    assert short["code"] == long["code"] == 0
    growth = long["peak_mb"] - short["peak_mb"]
    print(f"{command}: peak RSS {short['peak_mb']:.1f} MB at {LENGTHS[0]} frames, {long['peak_mb']:.1f} MB at "
          f"{LENGTHS[1]} frames (+{growth:.1f} MB); {short['seconds']:.1f} s, {long['seconds']:.1f} s")  # fmt: skip
    assert growth < MAX_GROWTH_MB, (command, short, long)
