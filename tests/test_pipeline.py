"""LEOPipeline, `assemble`, `generate` and `edit` with tiny random components (CPU)."""

import json

import pytest
import torch

from leo_video.diffusion.motion import MotionDiffusion
from leo_video.diffusion.start_code import StartCodePrior
from leo_video.diffusion.start_frame import StartFrameDiffusion
from leo_video.media.image import save_image
from leo_video.media.video import VideoReader, probe_video, write_video
from leo_video.models.lia import LatentImageAnimator
from leo_video.pipelines.leo import GenerationDefaults, LEOPipeline

M = 6
PARTS_NAMES = ("animator", "motion", "start_code", "start_frame")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("parts")
    modules = {
        "lia": LatentImageAnimator(size=64, style_dim=32, motion_dim=M, channel_max=16),
        "lmdm": MotionDiffusion.from_preset("tiny", motion_dim=M, sequence_length=8),
        "prior": StartCodePrior.from_preset("tiny", motion_dim=M),
        "cddpm": StartFrameDiffusion.from_preset("tiny", sample_size=32, motion_dim=M),
    }
    for name, module in modules.items():
        module.save_pretrained(root / name)
    return root


@pytest.fixture(scope="module")
def source_image(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "source.png"
    torch.manual_seed(1)
    save_image(path, torch.rand(3, 64, 64) * 2 - 1)
    return path


def _pipe(parts, with_start_models=True):
    from leo_video.pipelines.leo import load_component

    names = ["animator", "motion"] + (["start_code", "start_frame"] if with_start_models else [])
    folders = {"animator": "lia", "motion": "lmdm", "start_code": "prior", "start_frame": "cddpm"}
    defaults = GenerationDefaults(steps=3, start_frame_steps=3)  # few denoising steps: tests stay fast
    return LEOPipeline(**{n: load_component(n, parts / folders[n]) for n in names}, defaults=defaults)


def test_unconditional_is_deterministic_and_survives_save_load(parts, tmp_path):
    pipe = _pipe(parts)
    kw = dict(num_frames=11, num_videos=2, steps=4)
    a = pipe(None, generator=torch.Generator().manual_seed(0), **kw)
    assert a.shape == (2, 11, 3, 64, 64) and a.abs().max() <= 1
    b = pipe(None, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(a, b)
    c = pipe(None, generator=torch.Generator().manual_seed(1), **kw)
    assert not torch.equal(a, c)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = LEOPipeline.from_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert {name: index[name][1] for name in pipe.parts()} == {
        "animator": "LatentImageAnimator", "motion": "MotionDiffusion", "start_code": "StartCodePrior",
        "start_frame": "StartFrameDiffusion"}
    assert sorted(p.name for p in (tmp_path / "pipe").iterdir() if p.is_dir()) == sorted(pipe.parts())
    assert torch.equal(loaded(None, generator=torch.Generator().manual_seed(0), **kw), a)


def _write_first_layout(pipe: LEOPipeline, folder) -> None:
    """The layout written before model_index.json: pipeline.json, lmdm/ prior/ cddpm/, AlphaPrior class name."""
    old = {"animator": "animator", "motion": "lmdm", "start_code": "prior", "start_frame": "cddpm"}
    for name, module in pipe.parts().items():
        module.save_pretrained(folder / old[name])
    config = json.loads((folder / "prior" / "config.json").read_text())
    (folder / "prior" / "config.json").write_text(json.dumps({**config, "_class_name": "AlphaPrior"}))
    defaults = {"sampler": "ddim", "steps": 3, "cddpm_steps": 2, "fps": 12.0}
    meta = {"format": "leo-pipeline", "version": 1, "components": sorted(old.values()), "defaults": defaults}
    (folder / "pipeline.json").write_text(json.dumps(meta))


def test_pipelines_of_the_first_layout_still_load_with_a_note(parts, tmp_path, caplog):
    pipe = _pipe(parts)
    _write_first_layout(pipe, tmp_path / "old")
    with caplog.at_level("WARNING", logger="leo_video.pipelines.leo"):
        loaded = LEOPipeline.from_pretrained(tmp_path / "old")
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'old'}: a pipeline of the first layout (pipeline.json); save_pretrained writes the current one"]
    assert loaded.defaults == GenerationDefaults(sampler="ddim", steps=3, start_frame_steps=2, fps=12.0)
    for name, module in pipe.parts().items():
        saved, restored = module.state_dict(), loaded.parts()[name].state_dict()
        assert saved.keys() == restored.keys() and all(torch.equal(saved[k], restored[k]) for k in saved), name
    loaded.save_pretrained(tmp_path / "new")  # converting: the current layout, the same weights
    again = LEOPipeline.from_pretrained(tmp_path / "new")
    assert again.defaults == loaded.defaults
    assert torch.equal(again.start_code.mlp.proj_in.weight, pipe.start_code.mlp.proj_in.weight)


def test_pipeline_moves_and_casts_like_a_diffusers_pipeline(parts, tmp_path):
    from diffusers import DiffusionPipeline

    pipe = _pipe(parts)
    assert isinstance(pipe, DiffusionPipeline) and set(pipe.components) == set(PARTS_NAMES)
    pipe.save_pretrained(tmp_path / "pipe", weights_dtype=torch.float16)
    half = LEOPipeline.from_pretrained(tmp_path / "pipe", torch_dtype=torch.float16)
    assert half.dtype == torch.float16 and {p.dtype for m in half.parts().values() for p in m.parameters()} == {
        torch.float16}
    full = LEOPipeline.from_pretrained(tmp_path / "pipe")  # fp16 on disk, float32 by default
    assert full.to(torch.float64).dtype == torch.float64 and full.motion.code_std.dtype == torch.float64
    assert full.to("cpu").device == torch.device("cpu")


@pytest.mark.parametrize("entry, problem", [
    (["os", "system"], "motion must be leo_video.diffusion.motion.MotionDiffusion"),
    (None, "motion must be"),
])
def test_model_index_naming_another_class_is_refused_before_importing_it(parts, tmp_path, entry, problem):
    from leo_video.errors import CheckpointError

    _pipe(parts, with_start_models=False).save_pretrained(tmp_path / "pipe")
    index_path = tmp_path / "pipe" / "model_index.json"
    index = json.loads(index_path.read_text())
    index_path.write_text(json.dumps({**index, "motion": entry}))
    with pytest.raises(CheckpointError, match=problem):
        LEOPipeline.from_pretrained(tmp_path / "pipe")


def test_a_part_folder_holding_another_class_is_refused(parts, tmp_path):
    from leo_video.errors import CheckpointError

    _pipe(parts).save_pretrained(tmp_path / "pipe")
    for name in ("start_code", "start_frame"):  # swap two parts' folders
        (tmp_path / "pipe" / name).rename(tmp_path / "pipe" / f"{name}.x")
    (tmp_path / "pipe" / "start_code.x").rename(tmp_path / "pipe" / "start_frame")
    (tmp_path / "pipe" / "start_frame.x").rename(tmp_path / "pipe" / "start_code")
    with pytest.raises(CheckpointError, match="holds a StartFrameDiffusion, expected StartCodePrior for the start_code part"):
        LEOPipeline.from_pretrained(tmp_path / "pipe")


def test_conditional_first_frame_is_the_source_rendered(parts):
    pipe = _pipe(parts, with_start_models=False)
    image = torch.rand(3, 64, 64) * 2 - 1
    video = pipe(image, num_frames=20, generator=torch.Generator().manual_seed(0), steps=3)  # 20 > L = 8
    assert video.shape == (1, 20, 3, 64, 64)
    # frame 1 is rendered from α₁ = E(x₁): the animator's own reconstruction of the source
    with torch.no_grad():
        expected = pipe.animator(image[None], image[None]).clamp(-1, 1)
    torch.testing.assert_close(video[0, 0], expected[0], atol=1e-4, rtol=0)


def test_same_motion_on_two_sources_uses_the_same_codes(parts):
    pipe = _pipe(parts, with_start_models=False)
    motion = torch.randn(9, M)
    seen = []
    render = pipe.animator.render

    def spy(appearance, codes, start_motion=None, chunk_size=None):
        seen.append((codes.clone(), start_motion.clone()))
        return render(appearance, codes, start_motion, chunk_size)

    pipe.animator.render = spy
    for seed in (0, 1):
        torch.manual_seed(seed)
        pipe(torch.rand(3, 64, 64) * 2 - 1, num_frames=9, motion=motion)
    assert torch.equal(seen[0][0], motion) and torch.equal(seen[1][0], motion)
    assert torch.equal(seen[0][1], motion[0]) and torch.equal(seen[1][1], motion[0])


def test_unconditional_without_cddpm_says_so(parts):
    from leo_video.errors import InputError

    with pytest.raises(InputError, match=r"no start_code and start_frame"):
        _pipe(parts, with_start_models=False)(None, num_frames=4)


def test_nan_model_fails_clearly(parts):
    from leo_video.errors import NumericalError

    pipe = _pipe(parts, with_start_models=False)
    with torch.no_grad():
        pipe.animator.dec.to_rgbs[-1].bias.fill_(float("nan"))
    with pytest.raises(NumericalError, match="NaN"):
        pipe(torch.zeros(3, 64, 64), num_frames=4, steps=2)


def test_assemble_and_generate_commands(run_cli, parts, source_image, tmp_path):
    pipe_dir = tmp_path / "pipe"
    code, out, err = run_cli("assemble", "--animator", parts / "lia", "--motion", parts / "lmdm", "--start-code",
                             parts / "prior", "--start-frame", parts / "cddpm", "--steps", "3", "--fps", "10", "--out", pipe_dir)
    assert code == 0, err
    code, out, err = run_cli("generate", "--pipeline", pipe_dir, "--frames", "13", "--num-videos", "2",
                             "--out", tmp_path / "uncond.mp4", "--device", "cpu")
    assert code == 0, err
    for k in range(2):
        info = probe_video(tmp_path / f"uncond_{k:03d}.mp4")
        assert (info.frames, info.width, info.fps) == (13, 64, 10)
    code, out, err = run_cli("generate", "--lia", parts / "lia", "--lmdm", parts / "lmdm", "--source", source_image,
                             "--frames", "17", "--steps", "2", "--out", tmp_path / "cond.gif", "--device", "cpu")
    assert code == 0, err
    assert probe_video(tmp_path / "cond.gif").frames == 17
    # an existing output is not overwritten
    before = (tmp_path / "cond.gif").read_bytes()
    code, out, err = run_cli("generate", "--lia", parts / "lia", "--lmdm", parts / "lmdm", "--source", source_image,
                             "--frames", "3", "--out", tmp_path / "cond.gif")
    assert code != 0 and "--overwrite" in err and (tmp_path / "cond.gif").read_bytes() == before


def test_generate_unconditional_without_cddpm_is_one_line(run_cli, parts, tmp_path):
    code, out, err = run_cli("generate", "--lia", parts / "lia", "--lmdm", parts / "lmdm", "--frames", "3",
                             "--out", tmp_path / "x.mp4")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "start_frame" in err
    assert not (tmp_path / "x.mp4").exists()


def test_edit_command_renders_original_motion_on_the_edited_frame(run_cli, parts, tmp_path):
    torch.manual_seed(2)
    video = torch.rand(6, 3, 64, 64) * 2 - 1
    write_video(tmp_path / "orig.mp4", video, fps=12)
    first = VideoReader(tmp_path / "orig.mp4").read([0])[0]
    edited = torch.from_numpy(first.copy())
    edited[..., 0] = 255 - edited[..., 0]  # recolour the first frame
    save_image(tmp_path / "edited.png", edited.permute(2, 0, 1).float() / 127.5 - 1)
    code, out, err = run_cli("edit", "--lia", parts / "lia", "--video", tmp_path / "orig.mp4",
                             "--edited-first-frame", tmp_path / "edited.png", "--out", tmp_path / "edit.mp4",
                             "--side-by-side", "--device", "cpu")
    assert code == 0, err
    info = probe_video(tmp_path / "edit.mp4")
    assert info.frames == 6 and info.fps == 12 and info.width > 3 * 64


def test_eval_fvd_generates_with_a_pipeline(run_cli, parts, tmp_path):
    """`eval fvd --pipeline` feeds unconditional LEO samples to the detector (scripted stand-in)."""
    import torch.nn as nn

    class StandInI3D(nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool, resize: bool, return_features: bool) -> torch.Tensor:
            return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1)  # (B, 6)

    detector = tmp_path / "i3d.pt"
    torch.jit.script(StandInI3D()).save(str(detector))
    real = tmp_path / "real"
    for k in range(4):
        torch.manual_seed(k)
        write_video(real / f"r{k}.mp4", torch.rand(8, 3, 64, 64) * 2 - 1, fps=10)
    pipe_dir = tmp_path / "pipe"
    _pipe(parts).save_pretrained(pipe_dir)
    code, out, err = run_cli("eval", "fvd", "--real", real, "--pipeline", pipe_dir, "--detector", detector,
                             "--num-videos", "4", "--frames", "8", "--gen-batch", "2", "--steps", "2", "--device", "cpu")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["num_fake_videos"] == 4 and result["fvd"] > 0


def test_atomic_folder_keeps_the_old_folder_when_writing_fails(tmp_path):
    from leo_video.utils.atomic import OutputExistsError, atomic_folder

    target = tmp_path / "export"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(OutputExistsError):
        with atomic_folder(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_folder(target, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("crash mid-write")
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary folder left behind
