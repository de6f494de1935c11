"""``experiments/fvd_table.py`` (issue 21's results table): the baselines' clips and the whole driver on a CPU.

The driver's numbers need a GPU and the real I3D; here it runs end to end at smoke size (2-step models, a
stand-in detector) to prove that every row is measured against the same real clips and that a rerun resumes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_experiment
from PIL import Image



@pytest.fixture(scope="module")
def table():
    return load_experiment("fvd_table")


def _frame_folders(root: Path, colours: list[list[int]]) -> Path:
    """One 16x16 PNG frame folder per video; frame i of video v is the uniform grey ``colours[v][i]``."""
    for v, video in enumerate(colours):
        folder = root / f"video{v}"
        folder.mkdir(parents=True)
        for i, value in enumerate(video):
            Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(folder / f"{i:07d}.png")
    return root


class _GreyAnimator(torch.nn.Module):
    """Codes = a frame's mean grey; a rendering = its code everywhere (what the baselines render is visible)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.config = type("Config", (), {"size": 16})()

    def encode_motion(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.mean(dim=(1, 2, 3))[:, None]  # (n, 1)

    def encode_appearance(self, frames: torch.Tensor) -> torch.Tensor:
        return frames

    def render(self, appearance: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        return (self.scale * codes)[:, :, None, None].expand(-1, 3, 16, 16)  # (n, 3, 16, 16)


def test_still_and_shuffled_baselines_render_the_protocols_clips(table, tmp_path):
    from leo_video.metrics.evaluate import make_protocol
    from leo_video.metrics.protocol import plan_real_clips

    greys = [[10 * i + 40 * v for i in range(6)] for v in range(3)]  # 3 videos x 6 frames, every frame distinct
    real = _frame_folders(tmp_path, greys)
    protocol = make_protocol("fvd16", num_videos=3, num_frames=4, seed=5, resolution=16)
    specs = plan_real_clips([6, 6, 6], 3, 4, 5)
    to_unit = lambda g: g / 127.5 - 1  # noqa: E731 (uint8 grey -> [-1, 1])

    stills = list(table.still_videos(real, protocol, 16))
    shuffled = list(table.shuffled_code_videos(_GreyAnimator(), real, protocol, seed=0))
    assert len(stills) == len(shuffled) == 3
    for spec, still, moved in zip(specs, stills, shuffled):
        clip = [greys[spec.video_index][i] for i in spec.frame_indices]  # the clip the protocol measures
        assert still.shape == (4, 3, 16, 16) and torch.allclose(still, torch.tensor(to_unit(clip[0])).float(), atol=1e-6)
        values = moved[:, 0, 0, 0].double().numpy()
        # the clip's own frames, every one once, in another order
        assert np.allclose(np.sort(values), to_unit(np.array(sorted(clip), float)), atol=1e-6)
        assert not np.allclose(values, to_unit(np.array(clip, float)))


def test_smoke_run_measures_every_row_on_the_same_clips_and_resumes(table, tmp_path, capsys):
    runs = tmp_path / "runs"
    table.main(["--smoke", "--runs", str(runs), "--no-progress", "--variants", "v", "nolmc", "--cddpm-minutes", "1.5"])
    commands = [line for line in capsys.readouterr().out.splitlines() if "$ leo-video train " in line]
    # --cddpm-minutes: the cDDPM's own cap, the code models keep --minutes (1.0 in smoke runs)
    caps = sorted((c.split(" train ")[1].split()[0], re.findall(r"train\.max_minutes=([\d.]+)", c))
                  for c in commands)  # fmt: skip
    assert caps == [("alpha-prior", ["1.0"]), ("cddpm", ["1.5"]), ("lia", ["10.0"]), ("lmdm", ["1.0"]),
                    ("lmdm", ["1.0"])]  # fmt: skip
    result = json.loads((runs / "table.json").read_text())["rows"]
    variants = ["v", "nolmc"]
    assert set(result) == {*variants, "still", "shuffled", "recon", *(f"uncond_{v}" for v in variants)}
    for row, r in result.items():
        assert r["seeds"] == [0, 1] and all(np.isfinite([s["fvd"], s["kvd"]]).all() for s in r["per_seed"])
        assert all(s["num_real"] == s["num_fake"] == 4 for s in r["per_seed"])  # 4 test (or train) clips each
        assert r["per_seed"][0]["split"] == ("train" if row.startswith("uncond_") else "test")
        assert (runs / f"sheet_{row}.png").is_file()
    # motion columns: every video read back into codes; the still's codes never move (jitter ratio 0), the
    # reconstruction's move (it is driven by the real codes)
    assert all(np.isfinite([s["code_fd"], s["jitter_ratio"]]).all() for r in result.values() for s in r["per_seed"])
    assert all(s["jitter_ratio"] < 1e-6 for s in result["still"]["per_seed"])
    assert all(s["jitter_ratio"] > 0.01 for s in result["recon"]["per_seed"])
    # the still baseline is far from a moving model's clips under any detector that sees motion; here it
    # must at least differ from the variants (a row that reused another's clips would not)
    assert result["still"]["fvd_mean"] != result["v"]["fvd_mean"]
    text = (runs / "table.md").read_text()
    assert "| baseline: first frame repeated (still) | first frame of a test clip |" in text
    assert "| code-window FD ↓ | jitter ratio (1 ideal) |" in text
    assert "stage 2 at most 1.0 minutes each (the cDDPM 1.5)." in text

    export = runs / "lmdm_v" / "export" / "config.json"
    before = export.stat().st_mtime_ns
    capsys.readouterr()
    table.main(["--smoke", "--runs", str(runs), "--no-progress", "--variants", "v", "nolmc"])  # all there: nothing is redone
    out = capsys.readouterr().out
    assert export.stat().st_mtime_ns == before and "train lmdm" not in out and "seed 0:" not in out
    assert json.loads((runs / "table.json").read_text())["rows"] == result

    # --pipeline: a trained pipeline measured as it is, nothing trained, its animator for the baselines
    given = tmp_path / "given"
    table.main(["--smoke", "--runs", str(given), "--no-progress", "--pipeline", str(runs / "pipeline_v"),
                "--seeds", "0"])  # fmt: skip
    out = capsys.readouterr().out
    assert "$ leo-video train " not in out and "$ leo-video assemble" not in out
    rows = json.loads((given / "table.json").read_text())["rows"]
    assert set(rows) == {"given", "uncond_given", "still", "shuffled", "recon"}
    # the same clips, detector and seed as the first table: the baselines agree with it, the pipeline's rows
    # with its v rows (the same weights and sampler)
    for row, same in (("still", "still"), ("given", "v"), ("uncond_given", "uncond_v")):
        assert rows[row]["per_seed"][0]["fvd"] == pytest.approx(result[same]["per_seed"][0]["fvd"], rel=1e-5), row
    assert "the pipeline" in (given / "table.md").read_text()

    # --variants alone: the baselines of a given animator, nothing trained or encoded
    baselines = tmp_path / "baselines"
    table.main(["--runs", str(baselines), "--data", str(runs / "data"), "--lia", str(runs / "lia" / "export"),
                "--variants", "--seeds", "0", "--num-videos", "4", "--detector", str(runs / "stand_in_i3d.pt"),
                "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert "$ leo-video " not in out
    rows = json.loads((baselines / "table.json").read_text())["rows"]
    assert set(rows) == {"still", "shuffled", "recon"}
    assert rows["recon"]["per_seed"][0]["fvd"] == pytest.approx(result["recon"]["per_seed"][0]["fvd"], rel=1e-5)
