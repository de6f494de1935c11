"""Untrusted files given to the user-facing commands: code-executing pickles are refused, nothing runs.

Every command that reads a checkpoint goes through ``safe_torch_load`` (``weights_only=True``); these
tests hand each of them a pickle whose loading would run a shell command and check that the command
fails with one line naming the file and that the shell command never ran.
"""

from __future__ import annotations

import os

import pytest
import torch

from leo_video.media.image import save_image
from leo_video.media.video import write_video


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_checkpoint(tmp_path):
    path = tmp_path / "taichi.pt"
    marker = tmp_path / "pwned"
    torch.save({"gen": _Exploit(marker)}, path)
    return path, marker


@pytest.fixture
def inputs(tmp_path):
    image, video = tmp_path / "source.png", tmp_path / "drive.mp4"
    save_image(image, torch.zeros(3, 64, 64))
    write_video(video, torch.zeros(4, 3, 64, 64), fps=10)
    return image, video


def test_load_lia_refuses_a_code_executing_pickle(evil_checkpoint):
    from leo_video.errors import CheckpointError
    from leo_video.models.loading import load_lia

    path, marker = evil_checkpoint
    with pytest.raises(CheckpointError, match="refused to load"):
        load_lia(path)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["animate", "reconstruct", "manipulate", "encode-motion", "export", "edit"])
def test_commands_refuse_a_code_executing_pickle(command, evil_checkpoint, inputs, tmp_path, run_cli):
    path, marker = evil_checkpoint
    image, video = inputs
    out = tmp_path / "out"
    argv = {
        "animate": ["--checkpoint", path, "--source", image, "--driving", video, "--out", f"{out}.mp4"],
        "reconstruct": ["--checkpoint", path, "--video", video, "--out", f"{out}.mp4"],
        "manipulate": ["--checkpoint", path, "--source", image, "--out", out],
        "encode-motion": ["--checkpoint", path, "--data", video.parent, "--out", out],
        "export": ["--checkpoint", path, "--out", out],
        "edit": ["--lia", path, "--video", video, "--edited-first-frame", image, "--out", f"{out}.mp4"],
    }[command]
    code, _, err = run_cli(command, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "taichi.pt" in lines[0], err
    assert not marker.exists()
    assert not (tmp_path / "out.mp4").exists()


def test_yaml_object_tags_are_refused(tmp_path, run_cli):
    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f"train: !!python/object/apply:os.system ['touch {marker}']\n")
    code, _, err = run_cli("train", "lia", "--config", config, "--print-config")
    assert code != 0 and "evil.yaml" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
