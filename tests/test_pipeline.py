"""LEOPipeline, `assemble`, `generate` and `edit` with tiny random components (CPU)."""

import json

import pytest
import torch

from leo_video.diffusion.motion import MotionDiffusion
from leo_video.diffusion.start_code import StartCodePrior
from leo_video.diffusion.start_frame import StartFrameDiffusion
from leo_video.errors import InputError
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


def test_pipeline_sources_one_rule_for_the_library_the_cli_and_the_ui(run_cli, parts, tmp_path):
    """A pipeline folder or parts, not both; parts need the animator and the motion, except where an animator
    alone does (the UI's Animate tab): the library refuses it, and `generate` before any model loads."""
    from leo_video.errors import InputError
    from leo_video.pipelines.sources import PipelineSources, load_leo_pipeline
    from leo_video.ui.handlers import UIModels

    for sources, message in [(PipelineSources(tmp_path, animator=parts / "lia"), "not both"),
                             (PipelineSources(animator=parts / "lia"), "needs the animator and the motion"),
                             (PipelineSources(motion=parts / "lmdm", start_code=parts / "prior"), "needs the animator")]:
        with pytest.raises(InputError, match=message):
            load_leo_pipeline(sources, "cpu")
    with pytest.raises(InputError, match="needs the animator and the motion"):
        UIModels.load(PipelineSources(animator=parts / "lia", start_code=parts / "prior"), torch.device("cpu"))
    assert UIModels.load(PipelineSources(animator=parts / "lia"), torch.device("cpu")).pipeline is None
    for argv, message in ((["--lia", parts / "lia", "--start-code", parts / "prior"], "needs the animator"),
                          (["--pipeline", tmp_path / "absent", "--motion", parts / "lmdm"], "not both")):
        code, out, err = run_cli("generate", *argv, "--out", tmp_path / "x.mp4")
        assert code != 0 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.mp4").exists()


def test_edit_command_renders_original_motion_on_the_edited_frame(run_cli, parts, tmp_path):
    """`edit` writes the original video's motion, relative to its first frame, rendered on the edited frame.

    The expectation is built from the animator's primitives (encode the original frames, render them on
    the edited frame with the first original code as start); the written mp4 is lossy, so the test asks
    that it lies at that rendering, not at the plausible wrong answers: the motion rendered on the
    original first frame (edit ignored), or absolute codes (no start code). Replaces a frame-count check.
    """
    from leo_video.media.image import load_image
    from leo_video.pipelines.animate import frames_to_batch
    from leo_video.pipelines.leo import load_component

    torch.manual_seed(2)
    video = torch.rand(6, 3, 64, 64) * 2 - 1
    write_video(tmp_path / "orig.mp4", video, fps=12)
    first = VideoReader(tmp_path / "orig.mp4").read([0])[0]
    edited = torch.from_numpy(first.copy())
    edited[..., 0] = 255 - edited[..., 0]  # recolour the first frame
    save_image(tmp_path / "edited.png", edited.permute(2, 0, 1).float() / 127.5 - 1)
    code, out, err = run_cli("edit", "--lia", parts / "lia", "--video", tmp_path / "orig.mp4",
                             "--edited-first-frame", tmp_path / "edited.png", "--out", tmp_path / "edit.mp4",
                             "--device", "cpu")
    assert code == 0, err
    info = probe_video(tmp_path / "edit.mp4")
    assert info.frames == 6 and info.fps == 12
    written = torch.from_numpy(VideoReader(tmp_path / "edit.mp4").read(range(6))).permute(0, 3, 1, 2).float() / 127.5 - 1

    animator = load_component("animator", parts / "lia").eval()
    frames = frames_to_batch(list(VideoReader(tmp_path / "orig.mp4").read(range(6))), 64, torch.device("cpu"))
    with torch.no_grad():
        codes = animator.encode_motion(frames)  # (6, M)
        on = lambda image, start: animator.render(animator.encode_appearance(image[None]), codes, start_motion=start)  # noqa: E731
        expected = on(load_image(tmp_path / "edited.png", size=64), codes[:1])
        not_edited = on(frames[0], codes[:1])
        absolute = on(load_image(tmp_path / "edited.png", size=64), None)
    for wrong in (not_edited, absolute):
        # where the written video lies on the line from a wrong answer (0) to the expected one (1): H.264
        # smooths the fine differences between them, so it lands at 0.73-0.79 here; a wrong answer at ~0
        step = expected - wrong
        position = ((written - wrong) * step).sum() / (step * step).sum()
        assert 0.5 < position.item() < 1.2, position.item()

    code, out, err = run_cli("edit", "--lia", parts / "lia", "--video", tmp_path / "orig.mp4",
                             "--edited-first-frame", tmp_path / "edited.png", "--out", tmp_path / "side.mp4",
                             "--side-by-side", "--device", "cpu")
    assert code == 0, err
    assert probe_video(tmp_path / "side.mp4").width > 3 * 64  # edited first frame | original | edited


def test_eval_fvd_generates_with_a_pipeline(run_cli, parts, tmp_path):
    """`eval fvd --pipeline` scores exactly the pipeline's unconditional samples of --gen-seed.

    The expected FVD is computed here from the same pipeline call (seeded generator, two batches of two),
    the saved-as-uint8 frames, a mean/std-colour stand-in detector and scipy's sqrtm in float64. Replaces
    ``fvd > 0``: fails if the command ignores --gen-seed or --steps, generates conditionally, measures
    frames other than the first --frames, drops a batch, or scores real clips twice.
    """
    import numpy as np
    import scipy.linalg
    import torch.nn as nn

    class StandInI3D(nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool, resize: bool, return_features: bool) -> torch.Tensor:
            return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4))], dim=1) / 255.0  # (B, 6)

    def features(videos_uint8: torch.Tensor) -> np.ndarray:  # (B, T, H, W, 3) -> (B, 6) float64
        x = videos_uint8.double()
        return torch.cat([x.mean(dim=(1, 2, 3)), x.flatten(1, 3).std(dim=1)], dim=1).numpy() / 255.0

    def fd(a: np.ndarray, b: np.ndarray) -> float:
        ca, cb = np.cov(a, rowvar=False, ddof=0), np.cov(b, rowvar=False, ddof=0)
        return float(np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real))

    detector = tmp_path / "i3d.pt"
    torch.jit.script(StandInI3D()).save(str(detector))
    real = tmp_path / "real"
    for k in range(4):
        torch.manual_seed(k)
        write_video(real / f"r{k}.mp4", torch.rand(8, 3, 64, 64) * 2 - 1, fps=10)
    pipe = _pipe(parts)
    pipe.save_pretrained(tmp_path / "pipe")
    code, out, err = run_cli("eval", "fvd", "--real", real, "--pipeline", tmp_path / "pipe", "--detector", detector,
                             "--num-videos", "4", "--frames", "8", "--gen-batch", "2", "--steps", "2",
                             "--gen-seed", "5", "--device", "cpu")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    g = torch.Generator().manual_seed(5)
    fake = torch.cat([pipe(None, 8, 2, g, None, 2) for _ in range(2)])  # (4, 8, 3, 64, 64) in [-1, 1]
    fake = ((fake + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2)
    real_frames = torch.stack([torch.from_numpy(VideoReader(real / f"r{k}.mp4").read(range(8))) for k in range(4)])
    assert result["num_fake_videos"] == 4
    # float32 detector features vs float64 here: ~1e-6 relative on a distance of order 1e-2
    assert result["fvd"] == pytest.approx(fd(features(real_frames), features(fake)), rel=1e-4)


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


# ---- the paper's options (issue 21): the user's sampler/steps reach every model, guidance, absolute rendering


def _spy(module, name: str, calls: list) -> None:
    """Record the arguments of ``module.name`` (then call it)."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append((name, args, kwargs))
        return original(*args, **kwargs)

    setattr(module, name, wrapper)


def test_sampler_steps_and_guidance_reach_the_prior_and_the_cddpm(parts):
    """The user's sampler and steps are used by the start-code prior and the cDDPM too, start_frame_steps
    overrides steps for the cDDPM only, and guidance_scale reaches the cDDPM. Fails if either start model
    keeps the pipeline's stored defaults (ddim, 3 steps here) or the guidance scale is dropped."""
    pipe = _pipe(parts)
    calls: list = []
    _spy(pipe.start_code, "sample", calls)
    _spy(pipe.start_frame, "sample", calls)
    pipe(None, num_frames=3, num_videos=1, generator=torch.Generator().manual_seed(0), sampler="ddpm", steps=2,
         guidance_scale=2.5)
    (_, prior_args, _), (_, frame_args, _) = calls
    assert prior_args[1:3] == ("ddpm", 2)
    assert frame_args[1:4] == ("ddpm", 2, 2.5)
    calls.clear()
    pipe(None, num_frames=3, generator=torch.Generator().manual_seed(0), steps=2, start_frame_steps=4)
    assert calls[0][1][1:3] == ("ddim", 2) and calls[1][1][1:4] == ("ddim", 4, 1.0)
    calls.clear()
    pipe(None, num_frames=3, generator=torch.Generator().manual_seed(0))  # nothing given: the stored defaults
    assert calls[0][1][1:3] == ("ddim", 3) and calls[1][1][1:4] == ("ddim", 3, 1.0)


def test_guidance_scale_changes_the_start_frame_only_where_the_model_allows_it(parts):
    """A guided start frame differs from the unguided one with the same seed (the scale is used), and a
    cDDPM trained without condition dropout refuses a scale other than 1 with one line."""
    pipe = _pipe(parts)
    kw = dict(num_frames=2, steps=2)
    plain = pipe(None, generator=torch.Generator().manual_seed(0), **kw)
    guided = pipe(None, generator=torch.Generator().manual_seed(0), guidance_scale=4.0, **kw)
    assert not torch.allclose(plain[:, 0], guided[:, 0], atol=1e-3)
    pipe.start_frame.unet.register_to_config(cond_dropout=0.0)
    try:
        with pytest.raises(InputError, match="cond_dropout"):
            pipe(None, generator=torch.Generator().manual_seed(0), guidance_scale=4.0, **kw)
    finally:
        pipe.start_frame.unet.register_to_config(cond_dropout=0.1)


def test_absolute_rendering(parts, source_image):
    """``rendering="absolute"`` renders the sampled codes themselves (no start code), ``relative`` renders
    them relative to α₁; from a real image, where α₁ = E(x₁), both give the same video. Fails if the
    option is ignored or inverted."""
    from leo_video.media.image import load_image

    pipe = _pipe(parts)
    calls: list = []
    _spy(pipe.animator, "render", calls)
    kw = dict(num_frames=3, steps=2)
    absolute = pipe(None, generator=torch.Generator().manual_seed(0), rendering="absolute", **kw)
    assert [c[2]["start_motion"] for c in calls] == [None]
    calls.clear()
    relative = pipe(None, generator=torch.Generator().manual_seed(0), **kw)
    assert calls[0][2]["start_motion"] is not None
    assert not torch.allclose(absolute, relative, atol=1e-4)  # E(x₁) of a cDDPM frame is not the sampled α₁
    image = load_image(source_image, size=64)
    a = pipe(image, generator=torch.Generator().manual_seed(0), rendering="absolute", **kw)
    r = pipe(image, generator=torch.Generator().manual_seed(0), **kw)
    torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-4)  # float32 renders of w + Qα vs w + Q(α − α₁) + Qα₁
    with pytest.raises(InputError, match="rendering"):
        pipe(image, rendering="sideways", **kw)


def test_generate_guidance_scale_flag(run_cli, parts, tmp_path):
    """`generate --guidance-scale` reaches the cDDPM: another scale, another start frame (same seed)."""
    pipe_dir = tmp_path / "pipe"
    _pipe(parts).save_pretrained(pipe_dir)
    outs = []
    for scale in ("1", "4"):
        out = tmp_path / f"g{scale}.gif"
        code, _, err = run_cli("generate", "--pipeline", pipe_dir, "--frames", "2", "--steps", "2",
                               "--guidance-scale", scale, "--out", out, "--device", "cpu")
        assert code == 0, err
        outs.append(VideoReader(out).read([0])[0].astype(float))
    assert abs(outs[0] - outs[1]).mean() > 1.0  # in 0..255 levels
