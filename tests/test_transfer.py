"""Ground-truth motion transfer: synthetic pairs (`make-synthetic --pairs`), the metric and `eval transfer`."""

import json

import numpy as np
import pytest
import torch

from leo_video.data.synthetic import render_synthetic_video, render_transfer, render_transfer_pair
from leo_video.metrics.transfer import list_transfer_pairs, pair_transfer_errors, transfer_errors


def test_transfer_of_a_person_onto_itself_is_its_own_video():
    assert np.array_equal(render_transfer(3, 5, 5, 4, 32), render_synthetic_video(3, 4, 32, index=5))


def test_transfer_pair_has_b_as_driver_and_a_in_b_poses_as_target():
    driving, target = render_transfer_pair(3, 1, 4, 48)  # A = person 2, B = person 3
    a, b = render_synthetic_video(3, 4, 48, index=2), render_synthetic_video(3, 4, 48, index=3)
    assert np.array_equal(driving, b)
    assert np.array_equal(target[:, 0, 0], a[:, 0, 0])  # A's background (top-left pixel of the wall)
    assert not np.array_equal(target[0], a[0])  # ... but not A's own pose
    # B's pose changes over time, so does the target: frame differences move in step
    motion_b, motion_t = np.abs(np.diff(b.astype(int), axis=0)).mean(), np.abs(np.diff(target.astype(int), axis=0)).mean()
    assert motion_b > 0.05 and motion_t > 0.05


class _Stub(torch.nn.Module):
    """The animator interface of transfer_motion: ``still`` renders the source, ``paste`` the driver."""

    def __init__(self, mode: str, size: int = 32) -> None:
        super().__init__()
        self.mode, self.config = mode, type("Config", (), {"size": size})()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def encode_appearance(self, source):
        return source  # (1, 3, S, S)

    def encode_motion(self, frames):
        return frames.flatten(1)  # (n, 3 S S)

    def render(self, appearance, codes, start_motion=None):
        n = codes.shape[0]
        return appearance.expand(n, -1, -1, -1) if self.mode == "still" else codes.view(n, *appearance.shape[1:])


def test_metric_baselines_are_what_a_still_and_a_pasting_animator_score():
    pairs = [render_transfer_pair(7, i, 6, 32) for i in range(2)]
    still, paste = transfer_errors(_Stub("still"), pairs), transfer_errors(_Stub("paste"), pairs)
    for i, (driving, target) in enumerate(pairs):
        t, d = target.astype(np.float64) / 255, driving.astype(np.float64) / 255
        assert still.per_pair["still_l1"][i] == pytest.approx(np.abs(t - t[:1]).mean(), rel=1e-5)
        assert still.per_pair["wrong_identity_l1"][i] == pytest.approx(np.abs(t - d).mean(), rel=1e-5)
    assert still.per_pair["l1"] == pytest.approx(still.per_pair["still_l1"], rel=1e-6)
    assert paste.per_pair["l1"] == pytest.approx(paste.per_pair["wrong_identity_l1"], rel=1e-6)
    summary = still.to_dict()
    assert summary["num_pairs"] == 2 and summary["l1_over_still"] == pytest.approx(1.0, rel=1e-6)
    with_frames = pair_transfer_errors(_Stub("still"), *pairs[0], return_frames=True)
    assert with_frames["frames"]["animated"].shape == (6, 3, 32, 32)


def test_make_synthetic_pairs_then_eval_transfer(tmp_path, run_cli, monkeypatch):
    import leo_video.models.loading as loading

    code, out, err = run_cli("make-synthetic", "--out", tmp_path / "pairs", "--pairs", 2, "--frames", 5,
                             "--size", 32, "--seed", 11, "--format", "frames")
    assert code == 0, err
    found = list_transfer_pairs(tmp_path / "pairs")
    assert [(d.name, t.name) for d, t in found] == [("driving", "target")] * 2
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu", dtype=None: _Stub("still"))
    results = []
    for source in (["--data", tmp_path / "pairs"], ["--seed", 11, "--pairs", 2, "--frames", 5]):
        code, out, err = run_cli("eval", "transfer", "--checkpoint", tmp_path / "lia", *source, "--device", "cpu",
                                 "--sheet", tmp_path / "sheet.png", "--overwrite")
        assert code == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    # lossless PNG pairs on disk and pairs rendered in memory are the same frames
    assert results[0]["per_pair"] == results[1]["per_pair"] and results[0]["num_pairs"] == 2
    assert results[0]["l1"] == pytest.approx(results[0]["still_l1"], rel=1e-6)
    assert (tmp_path / "sheet.png").stat().st_size > 0
    code, _, err = run_cli("eval", "transfer", "--checkpoint", tmp_path / "lia", "--data", tmp_path / "nothing")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "nothing" in err


def test_write_transfer_errors_is_transfer_errors_plus_a_sheet_of_the_first_pairs(tmp_path, monkeypatch):
    import leo_video.media.grid as grid
    from leo_video.metrics.transfer import SHEET_LABELS, SHEET_PAIRS, write_transfer_errors

    pairs = [render_transfer_pair(7, i, 4, 32) for i in range(SHEET_PAIRS + 1)]
    sheets = []
    monkeypatch.setattr(grid, "save_contact_sheet", lambda path, videos, num_frames, labels: sheets.append((videos, labels)))
    written = write_transfer_errors(_Stub("paste"), iter(pairs), sheet=tmp_path / "sheet.png")
    assert written.per_pair == transfer_errors(_Stub("paste"), pairs).per_pair
    (videos, labels), = sheets
    assert len(videos) == 4 * SHEET_PAIRS and labels == SHEET_LABELS * SHEET_PAIRS  # the first pairs only
    truth = pair_transfer_errors(_Stub("paste"), *pairs[SHEET_PAIRS - 1], return_frames=True)["frames"]
    for got, key in zip(videos[-4:-1], ("driving", "target", "animated")):  # the last pair shown, in row order
        torch.testing.assert_close(got, truth[key], rtol=0, atol=0)
    assert write_transfer_errors(_Stub("paste"), iter(pairs)).per_pair == written.per_pair and len(sheets) == 1
