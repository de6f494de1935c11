"""experiments/lmc_ablation.py: the pieces, and one micro end-to-end run of main() (train lmdm twice)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_experiment

from leo_video.errors import InputError

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "lmc_ablation.py"


@pytest.fixture(scope="module")
def ablation():
    return load_experiment("lmc_ablation")


def test_joint_trajectories_are_the_renderers_smooth_motion(ablation):
    a = ablation.joint_trajectories(seed=3, index=1, frames=40, fps=15.0)  # (T, J)
    assert a.shape == (40, 19) and a.dtype == np.float32
    np.testing.assert_array_equal(a, ablation.joint_trajectories(3, 1, 40, 15.0))  # deterministic
    assert not np.array_equal(a, ablation.joint_trajectories(3, 2, 40, 15.0))  # another person moves otherwise
    steps = np.abs(np.diff(a, axis=0)).max()
    assert 0 < steps < 0.2 * (a.max() - a.min())  # slow sinusoids: small frame-to-frame steps


def test_baselines(ablation):
    alpha1 = torch.randn(3, 5)
    static = ablation.static_baseline(alpha1, 7)
    assert static.shape == (3, 7, 5) and torch.equal(static[:, 4], alpha1)
    g = torch.Generator().manual_seed(0)
    train = [torch.randn(400, 5, generator=g).cumsum(0) * torch.arange(1, 6) for _ in range(4)]  # step std k
    walk = ablation.random_walk_baseline(alpha1, 2000, train, seed=0)
    assert walk.shape == (3, 2000, 5) and torch.equal(walk[:, 0], alpha1)
    step_std = walk.diff(dim=1).reshape(-1, 5).std(dim=0)
    torch.testing.assert_close(step_std, torch.arange(1, 6).float(), rtol=0.05, atol=0.0)


@pytest.mark.slow
def test_main_micro_run_writes_results_table_and_plot(ablation, tmp_path, capsys):
    """The script's plumbing on a 4-step micro run: that cannot rank LMC against no-LMC, so the ranking is
    asserted where it can be, in ``test_motion_law.py::test_lmc_beats_no_lmc`` (a problem where α₁
    determines the motion). Here: the two rows come from two different models (fails if one model's
    samples were scored twice or the switch did not reach training)."""
    out = tmp_path / "out"
    argv = ["--out", str(out), "--videos", "8", "--frames", "16", "--sequence-length", "8", "--steps", "4",
            "--batch-size", "8", "--sample-steps", "2", "--window", "4", "--samples-per-start", "2", "--threads", "1"]
    assert ablation.main(argv) == 0
    summary = json.loads((out / "results.json").read_text())
    results = summary["results"]
    assert list(results) == list(ablation.METHODS)
    assert summary["num_test_videos"] == 2 and summary["motion_dim"] == 19 and summary["sequence_frames"] == 16
    assert results["static"]["jitter_fake"] == 0.0
    assert all(np.isfinite(r["code_window_fd"]) and r["code_window_fd"] >= 0 for r in results.values())
    assert results["lmc"]["num_fake_sequences"] == 4  # 2 test starts x 2 samples
    assert results["lmc"]["code_window_fd"] != results["no_lmc"]["code_window_fd"]
    # both models exist, trained the same number of steps, one with LMC and one without
    for name, use_lmc in (("lmc", True), ("no_lmc", False)):
        config = json.loads((out / "work" / f"lmdm-{name}" / "export" / "config.json").read_text())
        assert config["use_lmc"] is use_lmc
    table = (out / "results.md").read_text().splitlines()
    assert len(table) == 2 + len(ablation.METHODS) and "cLMDM with LMC" in table[2]
    assert "cLMDM with LMC" in capsys.readouterr().out
    from PIL import Image

    assert Image.open(out / "results.png").size == (1260, 300)
    with pytest.raises(InputError, match="--overwrite"):
        ablation.main(argv)  # an earlier run's results are never silently replaced


def test_lia_codes_from_a_given_animator_skip_training(ablation, tmp_path):
    """``--codes-from lia --lia CKPT``: the videos are encoded with that animator (at its size and motion
    dimension); no LIA is trained."""
    from leo_video.data.motion_codes import MotionCodeStore
    from leo_video.models.lia import LatentImageAnimator
    from leo_video.models.loading import export_lia

    torch.manual_seed(0)
    export_lia(LatentImageAnimator(size=64, style_dim=32, motion_dim=7, channel_max=16), tmp_path / "lia")
    config = ablation.parse_args(["--out", str(tmp_path / "out"), "--codes-from", "lia", "--lia", str(tmp_path / "lia"),
                                  "--videos", "4", "--frames", "16", "--sequence-length", "8", "--window", "4"])
    store = MotionCodeStore(ablation.lia_code_store(config, tmp_path / "work"))
    assert not (tmp_path / "work" / "lia").exists()
    assert len(store.names) == 4 and all(store.codes(n).shape == (16, 7) for n in store.names)
    assert sorted(store.info(n)["split"] for n in store.names) == ["test", "train", "train", "train"]


def test_script_user_errors_are_one_line(tmp_path):
    import subprocess

    cmd = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), "--codes-from", "lia",
           "--lia", str(tmp_path / "missing.pt")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"lmc_ablation.py: {tmp_path / 'missing.pt'}: no such file"
