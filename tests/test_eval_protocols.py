"""The generated sides of the FVD protocols (``leo_video.metrics.generated``) and where real clips come from:
conditional FVD (first frame of each real clip), reconstruction FVD (self-reenactment), the real split.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from test_eval_cli import _StandInI3D
from tiny_models import tiny_pipeline

from leo_video.metrics.evaluate import make_protocol
from leo_video.metrics.generated import conditional_videos, reconstructed_videos
from leo_video.metrics.protocol import iter_real_clips, plan_real_clips

pytestmark = pytest.mark.usefixtures("one_thread")
LENGTHS = (12, 7, 9, 10)  # frames per real video: the 7-frame one is shorter than an 8-frame clip


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory):
    """Frame folders (lossless) of smooth random 64x80 videos with LENGTHS frames."""
    root = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(0)
    for v, length in enumerate(LENGTHS):
        low = rng.uniform(0, 255, (length, 4, 5, 3))
        (root / f"v{v}").mkdir()
        for t in range(length):
            image = Image.fromarray(low[t].astype(np.uint8)).resize((80, 64), Image.BILINEAR)
            image.save(root / f"v{v}" / f"{t:03d}.png")
    return root


def _decoded(real_dir, protocol):
    """The protocol's real clips, uint8 (T, H, W, 3) each, as real_clip_features reads them."""
    from leo_video.media.video import VideoReader

    readers = [VideoReader(real_dir / f"v{v}") for v in range(len(LENGTHS))]
    specs = plan_real_clips([len(r) for r in readers], protocol.num_videos, protocol.num_frames, protocol.seed)
    return [readers[s.video_index].read(s.frame_indices) for s in specs]


class _RecordingPipe:
    """Stands in for LEOPipeline: records the start images, returns zero videos (B, T, 3, S, S)."""

    size, device = 64, torch.device("cpu")

    def __init__(self):
        self.images = []

    def __call__(self, image, num_frames, num_videos, generator, sampler, steps):
        assert image.shape == (num_videos, 3, self.size, self.size)
        self.images.append(image)
        return torch.zeros(num_videos, num_frames, 3, self.size, self.size)


def test_conditional_videos_start_from_each_real_clips_first_frame(real_dir):
    from leo_video.pipelines.animate import frames_to_batch

    protocol = make_protocol("fvd16", num_frames=8, num_videos=10, seed=4)
    pipe = _RecordingPipe()
    videos = list(conditional_videos(pipe, real_dir, protocol, gen_batch=2, generator=torch.Generator()))
    clips = _decoded(real_dir, protocol)
    assert len(videos) == len(clips) == 3 and videos[0].shape == (8, 3, 64, 64)
    assert [len(i) for i in pipe.images] == [2, 1]  # batches of --gen-batch, the rest last
    expected = frames_to_batch([clip[0] for clip in clips], 64, torch.device("cpu"))  # first frame of each clip
    torch.testing.assert_close(torch.cat(pipe.images), expected, rtol=0, atol=0)


def test_reconstructed_videos_are_the_self_reenactment_of_each_clip(real_dir):
    from leo_video.media.video import VideoReader
    from leo_video.metrics.recon import iter_self_reenactment
    from leo_video.models.lia import LatentImageAnimator

    torch.manual_seed(0)
    animator = LatentImageAnimator(size=64, style_dim=32, motion_dim=5, channel_max=16).eval()
    protocol = make_protocol("fvd16", num_frames=9, num_videos=10)
    with torch.no_grad():
        videos = list(reconstructed_videos(animator, real_dir, protocol, batch_frames=4))
    assert len(videos) == 3 and videos[0].shape == (9, 3, 64, 64)  # v0, v2, v3: v1 is shorter than 9 frames
    with VideoReader(real_dir / "v2") as reader, torch.no_grad():  # 9 frames: its clip is the whole video
        expected = torch.cat([rendered for rendered, _ in iter_self_reenactment(animator, reader, batch_frames=4)])
    torch.testing.assert_close(videos[1], expected, rtol=1e-5, atol=1e-5)


def test_eval_fvd_conditional_pipeline_and_real_split(real_dir, tmp_path, run_cli):
    """`eval fvd --pipeline P --condition first-frame`; a dataset folder means its train split."""
    pipeline = tmp_path / "pipe"
    tiny_pipeline(with_start_models=False).save_pretrained(pipeline)  # conditional only: no prior, no cDDPM
    detector = tmp_path / "i3d_torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_StandInI3D()).save(str(detector))
    dataset = tmp_path / "dataset"
    (dataset / "test").mkdir(parents=True)
    (dataset / "train").symlink_to(real_dir, target_is_directory=True)
    code, out, err = run_cli("eval", "fvd", "--real", dataset, "--pipeline", pipeline, "--condition", "first-frame",
                             "--detector", detector, "--frames", 8, "--gen-batch", 2, "--device", "cpu")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["num_real"], result["num_fake"], result["condition"]) == (3, 3, "first-frame")
    assert result["real_split"] == "train" and result["real_folder"] == str(dataset / "train")
    assert result["detector"] == "stylegan-v-torchscript"
    code, _, err = run_cli("eval", "fvd", "--real", real_dir, "--fake", real_dir, "--condition", "first-frame",
                           "--detector", detector)
    assert code == 2 and "--condition first-frame: needs --pipeline" in err


def test_eval_all_reports_conditional_and_reconstruction_fvd(real_dir, tmp_path, run_cli, monkeypatch):
    """Conditional and reconstruction FVD are reported, and the real clips are measured once: FVD, conditional
    FVD (the same seed) and reconstruction FVD (here --recon-data is --real) share one feature pass without
    --cache-dir."""
    import leo_video.metrics.evaluate as evaluate
    from leo_video.models.lia import LatentImageAnimator

    real_passes = []
    monkeypatch.setattr(evaluate, "iter_real_clips", lambda *a: real_passes.append(a) or iter_real_clips(*a))

    pipeline, detector, lia = tmp_path / "pipe", tmp_path / "i3d.pt", tmp_path / "lia.pt"
    tiny_pipeline(with_start_models=False).save_pretrained(pipeline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_StandInI3D()).save(str(detector))
    torch.manual_seed(0)
    torch.save({"gen": LatentImageAnimator(size=64, style_dim=32, motion_dim=5, channel_max=16).state_dict()}, lia)
    code, out, err = run_cli("eval", "all", "--real", real_dir, "--fake", real_dir, "--detector", detector, "--frames", 8,
                             "--cond-pipeline", pipeline, "--checkpoint", lia, "--recon-data", real_dir,
                             "--out", tmp_path / "report", "--device", "cpu")
    assert code == 0, err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    by_key = {m["key"]: m for m in report["metrics"]}
    for key in ("fvd_conditional", "kvd_conditional", "fvd_recon", "kvd_recon"):
        assert (by_key[key]["num_real"], by_key[key]["num_fake"]) == (3, 3), key
    assert report["details"]["real_split"] == "as given" and "split: as given" in report["inputs"]["real"]
    assert "sha256" in report["inputs"]["detector"] and report["details"]["detector"] == "stylegan-v-torchscript"
    assert len(real_passes) == 1
