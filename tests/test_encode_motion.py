"""`leo-video encode-motion`: streamed batched encoding into a resumable motion-code store."""

import json

import pytest
import torch

from leo_video.data.motion_codes import MotionCodeStore, sha256_checkpoint
from leo_video.data.synthetic import make_synthetic_dataset
from leo_video.media.video import VideoReader
from leo_video.models.lia import LatentImageAnimator
from leo_video.pipelines.animate import frames_to_batch


@pytest.fixture(scope="module")
def tiny_lia(tmp_path_factory):
    torch.manual_seed(0)
    model = LatentImageAnimator(size=64, style_dim=32, motion_dim=6, channel_max=16).eval()
    path = tmp_path_factory.mktemp("lia") / "lia"
    model.save_pretrained(path)
    return model, path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "synth"
    make_synthetic_dataset(root, num_videos=4, num_frames=10, size=64, seed=3, test_fraction=0.25, progress=False)
    return root


def test_encode_motion_stores_every_video_and_resumes(run_cli, tiny_lia, dataset, tmp_path):
    model, ckpt = tiny_lia
    out = tmp_path / "codes"
    code, stdout, err = run_cli("encode-motion", "--checkpoint", ckpt, "--data", dataset, "--out", out,
                                "--batch-frames", "4", "--frame-stride", "2", "--device", "cpu")
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["videos"] == 4 and summary["motion_dim"] == 6 and summary["skipped"] == 0
    store = MotionCodeStore(out)
    assert sorted(store.info(n)["split"] for n in store.names) == ["test", "train", "train", "train"]
    # an exported folder is identified too: the hash of its files' names and hashes
    assert summary["lia_checkpoint_sha256"] == store.checkpoint_sha256 == sha256_checkpoint(ckpt)
    assert len(store.checkpoint_sha256) == 64
    name = store.names[0]
    info = store.info(name)
    assert info["frame_indices"] == [0, 2, 4, 6, 8] and info["fps"] > 0
    # the stored codes equal encoding the same frames directly, in one batch
    reader = VideoReader(info["source"])
    frames = [reader.read([i])[0] for i in info["frame_indices"]]
    with torch.no_grad():
        expected = model.encode_motion(frames_to_batch(frames, 64, torch.device("cpu")))
    torch.testing.assert_close(store.codes(name), expected, atol=1e-5, rtol=1e-5)
    # rerun: nothing is re-encoded, the store is unchanged
    before = (out / "index.json").read_text()
    code, stdout, _ = run_cli("encode-motion", "--checkpoint", ckpt, "--data", dataset, "--out", out, "--device", "cpu")
    assert code == 0 and (out / "index.json").read_text() == before


def test_encode_motion_skips_a_corrupt_video(run_cli, tiny_lia, dataset, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    (data / "train" / "broken.mp4").write_bytes(b"not a video")
    code, stdout, err = run_cli("encode-motion", "--checkpoint", tiny_lia[1], "--data", data,
                                "--out", tmp_path / "codes", "--device", "cpu")
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["videos"] == 4 and summary["skipped"] == 1


def test_encode_motion_missing_data_is_one_line(run_cli, tiny_lia, tmp_path):
    code, _, err = run_cli("encode-motion", "--checkpoint", tiny_lia[1], "--data", tmp_path / "nope", "--out", tmp_path / "c")
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "nope" in err


def test_encode_motion_batch_defaults_to_the_devices(run_cli, tiny_lia, dataset, tmp_path, monkeypatch):
    """Without --batch-frames a CPU encodes one frame per call (faster there), a GPU 64; a given value wins."""
    import leo_video.pipelines.encode as encode

    seen = []
    real = encode.encode_video

    def spy(animator, reader, batch_frames, *args, **kwargs):
        seen.append(batch_frames)
        return real(animator, reader, batch_frames, *args, **kwargs)

    monkeypatch.setattr(encode, "encode_video", spy)
    _, ckpt = tiny_lia
    code, _, err = run_cli("encode-motion", "--checkpoint", ckpt, "--data", dataset, "--out", tmp_path / "a",
                           "--device", "cpu")
    assert code == 0, err
    assert seen == [encode.DEFAULT_BATCH_FRAMES["cpu"]] * 4 == [1] * 4 and encode.DEFAULT_BATCH_FRAMES["cuda"] == 64
    seen.clear()
    code, _, err = run_cli("encode-motion", "--checkpoint", ckpt, "--data", dataset, "--out", tmp_path / "b",
                           "--device", "cpu", "--batch-frames", "3")
    assert code == 0, err
    assert seen == [3] * 4
    # one frame at a time or three: the same codes
    a, b = MotionCodeStore(tmp_path / "a"), MotionCodeStore(tmp_path / "b")
    for name in a.names:
        torch.testing.assert_close(a.codes(name), b.codes(name), atol=1e-5, rtol=1e-5)
