"""experiments/lia_diagnosis.py's per-level split of the animator's image (docs/TRAINING.md, finding 10)."""

import torch
from conftest import load_experiment

from leo_video.models.lia import LatentImageAnimator


def load_script():
    return load_experiment("lia_diagnosis")


def test_decoder_levels_add_up_to_the_image():
    """The levels' own RGB terms, upsampled level by level, give back the rendered image: the split is the
    decoder's own sum (a hook reading the wrong input, or a term that kept the upsampled skip, breaks it)."""
    torch.manual_seed(0)
    model = LatentImageAnimator(size=64, style_dim=32, motion_dim=4, channel_max=16).eval()
    with torch.no_grad():  # non-zero flow and mask logits, so that every level draws something different
        for flow in model.dec.to_flows:
            flow.bias.normal_(0, 0.5)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    out, found = load_script().decoder_levels(model, image)
    assert sorted(found) == [8, 16, 32, 64]
    total = None
    for k, r in enumerate(sorted(found)):
        rgb = found[r]["rgb"]
        assert rgb.shape == (2, 3, r, r)
        total = rgb if total is None else rgb + model.dec.to_rgbs[k].upsample(total)
    torch.testing.assert_close(total, out, rtol=1e-5, atol=1e-5)
    assert all(0 < found[r]["mask"] < 1 and found[r]["offset_px"] > 0 for r in found)
    # every level contributes: dropping any one term changes the image by far more than float32 rounding
    for r in found:
        assert found[r]["rgb"].abs().max() > 1e-3


def test_identity_bands_separate_shapes_from_detail():
    """A colour offset is all low band; a blur is mostly high band and lowers the detail ratio; an exact
    drawing scores zero in both bands (a split that swapped the bands or blurred only one side fails)."""
    import cv2

    bands = load_script().identity_bands
    rng = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 32, 32, generator=rng) * 2 - 1
    exact = bands(image.clone(), image)
    assert exact == {"identity_low": 0.0, "identity_high": 0.0, "detail_ratio": 1.0}

    shifted = bands(image + 0.1, image)  # 0.1 on [-1, 1] = 0.05 on [0, 1], at every pixel
    assert abs(shifted["identity_low"] - 0.05) < 1e-6 and shifted["identity_high"] < 1e-6
    assert abs(shifted["detail_ratio"] - 1.0) < 1e-5

    blurred_np = cv2.GaussianBlur(image[0].permute(1, 2, 0).numpy(), (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    blurred = bands(torch.from_numpy(blurred_np).permute(2, 0, 1)[None], image)
    assert blurred["identity_high"] > 3 * blurred["identity_low"] and blurred["detail_ratio"] < 0.5


def test_clips_reports_motion_and_spread_per_clip(tmp_path, monkeypatch):
    """``clips``: per clip the still's L1 over evenly spaced frames (their distance to frame 0) and the code spread
    of the same frames, computed here independently; a clip that never moves has both at zero."""
    import argparse

    import numpy as np
    import leo_video.models.loading as loading
    from PIL import Image

    from leo_video.train.lia import motion_spread

    rng = np.random.default_rng(0)
    moving = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    for split, name, frames in (("train", "moving", moving), ("test", "static", np.repeat(moving[:1], 4, 0))):
        folder = tmp_path / "data" / split / name
        folder.mkdir(parents=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"{i:03d}.png")
    torch.manual_seed(0)
    model = LatentImageAnimator(size=64, style_dim=16, motion_dim=4, channel_max=8).eval()
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu": model)
    args = argparse.Namespace(checkpoint="stub", data=str(tmp_path / "data"), splits=["train", "test"], videos=10,
                              frames=5)
    result = load_script().clips(args)
    x = torch.from_numpy(moving).permute(0, 3, 1, 2).float() / 127.5 - 1  # (5, 3, 64, 64): no resize at 64
    row = result["per_clip"]["train/moving"]
    assert abs(row["still_l1"] - float((x - x[:1]).abs().mean() / 2)) < 1e-6
    with torch.no_grad():
        assert abs(row["motion_spread"] - motion_spread(model, x[None])) < 1e-5 and row["motion_spread"] > 0
    static = result["per_clip"]["test/static"]
    assert static["still_l1"] == 0 and static["motion_spread"] < 1e-6
    assert result["summary"]["train"]["clips"] == 1 and result["summary"]["test"]["clips"] == 1


def test_levels_summarises_the_drawing_floor_per_split(tmp_path, monkeypatch):
    """``levels``: frame 0 of every clip drawn from itself, and per split the mean and median of that error and the
    mean mask of each level; recomputed here from the model for the one training clip."""
    import argparse

    import numpy as np
    import leo_video.models.loading as loading
    from PIL import Image

    rng = np.random.default_rng(1)
    for split, names in (("train", ["a"]), ("test", ["b", "c"])):
        for name in names:
            folder = tmp_path / "data" / split / name
            folder.mkdir(parents=True)
            for i, frame in enumerate(rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)):
                Image.fromarray(frame).save(folder / f"{i:03d}.png")
    torch.manual_seed(0)
    model = LatentImageAnimator(size=64, style_dim=16, motion_dim=4, channel_max=8).eval()
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu": model)
    args = argparse.Namespace(checkpoint="stub", data=str(tmp_path / "data"), splits=["train", "test"], videos=10)
    result = load_script().levels(args)
    first = torch.from_numpy(np.array(Image.open(tmp_path / "data/train/a/000.png"))).permute(2, 0, 1)[None]
    first = first.float() / 127.5 - 1
    with torch.no_grad():
        floor = float((model(first, first) - first).abs().mean() / 2)
    train, test = result["summary"]["train"], result["summary"]["test"]
    assert train["clips"] == 1 and abs(train["identity_l1_mean"] - floor) < 1e-5 * floor
    tests = [result["per_video"][f"test/{n}"]["identity_l1"] for n in "bc"]
    assert test["clips"] == 2 and abs(test["identity_l1_mean"] - np.mean(tests)) < 1e-12
    assert sorted(test["mask"]) == [8, 16, 32, 64] and all(0 < m < 1 for m in test["mask"].values())


def test_most_moved_frames_puts_frame_0_first_and_the_farthest_frames_in_time_order():
    """Frames whose distance to frame 0 is known (constant offsets): the picks are exactly the largest, sorted by time."""
    offsets = torch.tensor([0.0, 0.5, 0.1, 0.9, 0.0, 0.7, 0.2])
    frames = offsets[:, None, None, None].expand(7, 3, 4, 4).clone()
    most_moved_frames = load_script().most_moved_frames
    assert most_moved_frames(frames, 4) == [0, 1, 3, 5]
    assert most_moved_frames(frames, 1) == [0]
    assert most_moved_frames(frames, 20) == list(range(7))  # more asked than there are: every frame once


def test_cross_draws_each_clip_from_its_own_and_the_other_clips_codes(tmp_path, monkeypatch):
    """``cross``: codes don't move at frame 0; the own rendering's L1 is that of the model's own forward pass
    (relative motion from frame 0, the source = frame 0); the sheet has the six labelled rows."""
    import argparse

    import numpy as np
    import leo_video.models.loading as loading
    from PIL import Image

    rng = np.random.default_rng(1)
    clips = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        for i, frame in enumerate(rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)):
            Image.fromarray(frame).save(folder / f"{i:03d}.png")
        clips.append(str(folder))
    torch.manual_seed(0)
    model = LatentImageAnimator(size=64, style_dim=16, motion_dim=4, channel_max=8).eval()
    monkeypatch.setattr(loading, "load_lia", lambda path, device="cpu": model)
    args = argparse.Namespace(checkpoint="stub", clips=clips, frames=3, sheet=str(tmp_path / "cross.png"))
    result = load_script().cross(args)
    row = result["clips"]["a"]
    assert row["frames"][0] == 0 and len(row["frames"]) == 3 and row["code_displacement"][0] == 0
    assert row["still_l1"][0] == 0 and all(v > 0 for v in row["still_l1"][1:])
    x = torch.from_numpy(np.stack([np.asarray(Image.open(f"{clips[0]}/{i:03d}.png")) for i in row["frames"]]))
    x = x.permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        own = model(x[:1].expand(3, -1, -1, -1), x, start_motion=model.encode_motion(x[:1]).expand(3, -1))
    expected = ((own - x).abs().mean(dim=(1, 2, 3)) / 2).tolist()
    np.testing.assert_allclose(row["l1"], expected, rtol=1e-4, atol=1e-6)
    sheet = Image.open(tmp_path / "cross.png")
    assert sheet.height == 4 + 6 * (64 + 4) and sheet.width > 4 + 3 * (64 + 4)
