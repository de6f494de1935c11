"""The bad-input corpus (issue 11), generated here, through every command that reads such an input.

Videos (PyAV): empty, truncated, text and image bytes under a video name, a video under an image name,
zero frames; and unusual but valid ones: odd size, display-matrix rotation, variable frame rate, 10-bit
(yuv420p10le), alpha (qtrle argb, VP9 yuva420p). Images (Pillow): RGBA, LA, palette with and without
transparency, greyscale, 16-bit, CMYK JPEG, 8x8, 8000x8000, a header claiming 50000x50000 (decompression
bomb), truncated, empty, text. Checkpoints of the wrong model, size or dims; configs with unknown keys,
out-of-range values, wrong types, YAML errors.

For each input and each command that takes it: either the documented handling (converted, rotated
upright, skipped with a warning and counted) with a correct output, or a non-zero exit with one line on
stderr that names the input, no traceback, no output file, and an existing output (even with
``--overwrite``) left byte for byte as it was.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytestmark = pytest.mark.usefixtures("one_thread")

T, W, H = 6, 64, 48  # frames and size of the generated videos


# --------------------------------------------------------------------------------------------
# The corpus


def moving_frames(num: int = T, width: int = W, height: int = H, channels: int = 3) -> np.ndarray:
    """uint8 ``(num, height, width, channels)``: a bright square moving right on a gradient."""
    y, x = np.mgrid[0:height, 0:width]
    frames = np.zeros((num, height, width, channels), np.uint8)
    for t in range(num):
        frames[t, ..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
        frames[t, ..., 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
        frames[t, height // 4 : height // 2, 4 + 4 * t : 16 + 4 * t, :3] = 255
        if channels == 4:
            frames[t, ..., 3] = np.where(x < width // 2, 255, 64)
    return frames


def write_av(path: Path, codec: str, pix_fmt: str, frames: np.ndarray, *, rotation: int | None = None,
             pts_ms: list[int] | None = None) -> Path:
    """Encode ``frames`` (T, H, W, 3|4) uint8 with PyAV: any codec/pixel format, rotation, timestamps."""
    import av

    source_format = "rgba" if frames.shape[-1] == 4 else "rgb24"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if pts_ms is not None:  # variable frame rate: explicit timestamps in milliseconds
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        for k, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=source_format)
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[k], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_zero_frame_video(path: Path) -> Path:
    """An mp4 with a video stream and no frames."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        container.start_encoding()  # the header and an empty track, then no packet at all
    return path


def png_bomb(path: Path, side: int = 50_000) -> Path:
    """A PNG whose header claims ``side`` x ``side`` RGB pixels (2.5 GP) over a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


def build_videos(folder: Path) -> dict[str, Path]:
    """Broken videos and unusual valid ones (``VALID_VIDEOS``), by name."""
    folder.mkdir(parents=True, exist_ok=True)
    good = write_av(folder / "good.mp4", "libx264", "yuv420p", moving_frames())
    png = io.BytesIO()
    Image.fromarray(moving_frames(1)[0]).save(png, format="PNG")
    videos = {
        "empty": folder / "empty.mp4",
        "truncated": folder / "truncated.mp4",
        "text": folder / "text.mp4",
        "image_named_mp4": folder / "still.mp4",
        "video_named_png": folder / "clip.png",
        "zero_frames": write_zero_frame_video(folder / "zero.mp4"),
        "odd_size": write_av(folder / "odd.mkv", "ffv1", "yuv444p", moving_frames(width=63, height=45)),
        "rotated": write_av(folder / "rotated.mp4", "libx264", "yuv420p", moving_frames(), rotation=90),
        "vfr": write_av(folder / "vfr.mkv", "libx264", "yuv420p", moving_frames(), pts_ms=[0, 40, 70, 200, 210, 400]),
        "10bit": write_av(folder / "tenbit.mp4", "libx264", "yuv420p10le", moving_frames()),
        "alpha_qtrle": write_av(folder / "alpha.mov", "qtrle", "argb", moving_frames(channels=4)),
        "alpha_vp9": write_av(folder / "alpha.webm", "libvpx-vp9", "yuva420p", moving_frames(channels=4)),
    }
    videos["empty"].write_bytes(b"")
    videos["truncated"].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    videos["text"].write_text("this is not a video\n")
    videos["image_named_mp4"].write_bytes(png.getvalue())
    videos["video_named_png"].write_bytes(good.read_bytes())
    good.unlink()
    return videos


VALID_VIDEOS = {"odd_size", "rotated", "vfr", "10bit", "alpha_qtrle", "alpha_vp9"}
BROKEN_VIDEOS = ["empty", "truncated", "text", "video_named_png", "zero_frames"]


def build_images(folder: Path) -> dict[str, Path]:
    """Stills in every mode Pillow writes, plus sizes and files that must be refused."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(moving_frames(1, 80, 64)[0])  # 80x64: centre-cropped to a square
    rgba = Image.fromarray(moving_frames(1, 80, 64, channels=4)[0], mode="RGBA")
    palette_transparent = rgb.quantize(16)
    palette_transparent.info["transparency"] = 0
    grey16 = Image.fromarray((np.linspace(0, 65535, 80 * 64).reshape(64, 80)).astype(np.uint16))
    images = {
        "rgba": (rgba, "rgba.png"), "la": (rgba.convert("LA"), "la.png"), "palette": (rgb.quantize(16), "palette.png"),
        "palette_transparent": (palette_transparent, "palette_t.png"), "grey": (rgb.convert("L"), "grey.png"),
        "grey16": (grey16, "grey16.png"), "cmyk_jpeg": (rgb.convert("CMYK"), "cmyk.jpg"),
        "grey_jpeg": (rgb.convert("L"), "grey.jpg"), "tiny": (rgb.resize((8, 8)), "tiny.png"),
    }  # fmt: skip
    paths = {}
    for name, (image, filename) in images.items():
        image.save(folder / filename)
        paths[name] = folder / filename
    y, x = np.mgrid[0:8000:125, 0:8000:125]  # a smooth 64x64 picture, blown up to 8000x8000
    small = np.stack([x * 255 // 7999, y * 255 // 7999, (x + y) * 255 // 15998], -1).astype(np.uint8)
    Image.fromarray(small).resize((8000, 8000), Image.NEAREST).save(folder / "huge.png", compress_level=1)
    paths["huge"] = folder / "huge.png"
    paths["bomb"] = png_bomb(folder / "bomb.png")
    good = (folder / "rgba.png").read_bytes()
    for name, data in {"truncated": good[: len(good) // 2], "empty": b"", "text": b"not an image\n"}.items():
        (folder / f"{name}.png").write_bytes(data)
        paths[name] = folder / f"{name}.png"
    return paths


VALID_IMAGES = {"rgba", "la", "palette", "palette_transparent", "grey", "grey16", "cmyk_jpeg", "grey_jpeg", "huge"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("corpus")
    return {"videos": build_videos(root / "videos"), "images": build_images(root / "images")}


M = 5


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny LIA (export folder and official .pt), a matching cLMDM, and checkpoints that are wrong."""
    from leo_video.diffusion.motion import MotionDiffusion
    from leo_video.media.image import save_image
    from leo_video.models.lia import LatentImageAnimator

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    lia = LatentImageAnimator(size=64, style_dim=8, motion_dim=M, channel_max=4).eval()
    lia.save_pretrained(root / "lia")
    MotionDiffusion.from_preset("tiny", motion_dim=M, sequence_length=8).save_pretrained(root / "lmdm")
    MotionDiffusion.from_preset("tiny", motion_dim=M - 1, sequence_length=8).save_pretrained(root / "lmdm_other_dims")
    save_image(root / "source.png", torch.rand(3, 64, 64) * 2 - 1)
    state = lia.state_dict()
    (root / "empty.pt").write_bytes(b"")
    (root / "text.pt").write_text("not a checkpoint\n")
    torch.save({"gen": {"mapping.weight": torch.zeros(3)}}, root / "other_model.pt")  # wrong model
    name = "enc.net_app.convs.1.skip.1.weight"
    torch.save({"gen": {**state, name: torch.zeros(8, 8, 2, 2)}}, root / "wrong_size.pt")  # wrong tensor size
    (root / "lia_torn").mkdir()
    (root / "lia_torn" / "config.json").write_text((root / "lia" / "config.json").read_text())
    weights = next((root / "lia").glob("*.safetensors"))
    (root / "lia_torn" / weights.name).write_bytes(weights.read_bytes()[:400])  # a torn copy
    folders = {name: root / name for name in ("lia", "lmdm", "lmdm_other_dims", "lia_torn")}
    return {**folders, "source": root / "source.png", **{p.stem: p for p in root.glob("*.pt")}}


def assert_one_line_error(code: int, err: str, named: str) -> None:
    """Non-zero exit, exactly one stderr line, naming the input, no traceback."""
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and named in lines[0] and "Traceback" not in err, err


def precious(path: Path) -> bytes:
    """Put an existing output in place (the bad run gets --overwrite and must still leave it alone)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"an earlier output that must survive")
    return path.read_bytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))  # temp files of atomic writes


def command_argv(command: str, models: dict, video: Path, lia: Path | None = None, source: Path | None = None) -> list:
    """A command on the tiny models (without --out); ``lia`` / ``source`` replace the good ones."""
    lia, source = lia or models["lia"], source or models["source"]
    return {
        "animate": ["animate", "--checkpoint", lia, "--source", source, "--driving", video],
        "edit": ["edit", "--lia", lia, "--edited-first-frame", source, "--video", video],
        "reconstruct": ["reconstruct", "--checkpoint", lia, "--video", video],
        "generate": ["generate", "--lia", lia, "--lmdm", models["lmdm"], "--source", source, "--frames", "4",
                     "--steps", "1"],
        "manipulate": ["manipulate", "--checkpoint", lia, "--source", source, "--steps", "2"],
        "encode-motion": ["encode-motion", "--checkpoint", lia, "--data", video.parent],
        "export": ["export", "--checkpoint", lia],
    }[command]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Videos


@pytest.mark.parametrize("name", sorted(VALID_VIDEOS) + BROKEN_VIDEOS + ["image_named_mp4"])
def test_probe(name, corpus, run_cli):
    path = corpus["videos"][name]
    code, out, err = run_cli("probe", path)
    if name in VALID_VIDEOS or name == "image_named_mp4":  # a PNG under .mp4 is a one-frame video to FFmpeg
        assert code == 0, err
        info = json.loads(out)
        expected = (H, W) if name != "odd_size" else (45, 63)
        assert (info["height"], info["width"]) == (expected[::-1] if name == "rotated" else expected)
        assert info["frames"] == (1 if name == "image_named_mp4" else T)
    else:
        assert_one_line_error(code, err, path.name)


@pytest.mark.parametrize("command", ["animate", "edit", "reconstruct"])
@pytest.mark.parametrize("name", sorted(VALID_VIDEOS) + BROKEN_VIDEOS)
def test_video_commands(name, command, corpus, models, tmp_path, run_cli):
    from leo_video.media.video import probe_video

    video = corpus["videos"][name]
    out = tmp_path / "out.mp4"
    before = None if name in VALID_VIDEOS else precious(out)
    code, stdout, err = run_cli(*command_argv(command, models, video), "--out", out, "--overwrite", "--device", "cpu")
    if name in VALID_VIDEOS:
        assert code == 0, err
        assert probe_video(out).frames == T
    else:
        assert_one_line_error(code, err, video.name)
        assert out.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_unusual_videos_decode_to_the_pictures_that_were_encoded(corpus):
    """Rotation applied (upright), alpha composited on white, 10-bit and odd sizes decoded faithfully,
    variable-rate frames all present in timestamp order."""
    from leo_video.media.video import VideoReader

    original = moving_frames().astype(np.float32)  # (T, H, W, 3)
    rgba = moving_frames(channels=4).astype(np.float32)
    on_white = rgba[..., :3] * rgba[..., 3:] / 255 + 255 * (1 - rgba[..., 3:] / 255)
    expected = {
        "rotated": np.rot90(original, k=1, axes=(1, 2)),  # 90 degrees counter-clockwise, as the display matrix says
        "vfr": original, "10bit": original, "alpha_qtrle": on_white,
        "odd_size": moving_frames(width=63, height=45).astype(np.float32),
    }  # fmt: skip
    for name, target in expected.items():
        frames = VideoReader(corpus["videos"][name]).read(range(T)).astype(np.float32)
        assert frames.shape == target.shape, name
        error = np.abs(frames - target).mean()
        assert error < (1.0 if name in ("odd_size", "alpha_qtrle") else 6.0), (name, error)  # lossless vs x264


@pytest.mark.parametrize("name", sorted(VALID_VIDEOS) + ["empty", "truncated", "text", "zero_frames"])
def test_dataset_commands_skip_bad_videos_with_a_warning(name, corpus, models, tmp_path, run_cli):
    """`prepare` and `encode-motion` skip a bad video with a warning naming it; with nothing usable left
    they exit 2 and leave no output folder. A usable video is prepared / encoded in full."""
    import shutil

    from leo_video.data.motion_codes import MotionCodeStore
    from leo_video.media.video import probe_video

    video = corpus["videos"][name]
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(video, data / video.name)
    prepared, codes = tmp_path / "prepared", tmp_path / "codes"
    code_p, out_p, err_p = run_cli("prepare", "--input", data / video.name, "--out", prepared, "--size", "32",
                                   "--test-fraction", "0", "--no-progress")  # fmt: skip
    code_e, out_e, err_e = run_cli("encode-motion", "--checkpoint", models["lia"], "--data", data, "--out", codes,
                                   "--device", "cpu")  # fmt: skip
    if name in VALID_VIDEOS:
        assert code_p == 0 and code_e == 0, err_p + err_e
        (output,) = (prepared / "train").iterdir()
        info = probe_video(output)
        assert (info.frames, info.width, info.height) == (T, 32, 32)
        store = MotionCodeStore(codes)
        assert store.codes(store.names[0]).shape == (T, M)
        return
    for code, err, tool in ((code_p, err_p, "prepare"), (code_e, err_e, "encode-motion")):
        warning, error = err.strip().splitlines()
        assert code == 2 and "Traceback" not in err
        assert warning.startswith(f"leo-video {tool}: warning: skipped {data / video.name}: "), err
        assert error.startswith(f"leo-video {tool}: error: ") and "could be" in error, err
    assert not prepared.exists() and not codes.exists()


# --------------------------------------------------------------------------------------------
# Images


@pytest.mark.parametrize("command", ["animate", "edit", "generate"])
@pytest.mark.parametrize("name", sorted(VALID_IMAGES - {"huge"}) + ["tiny", "bomb", "truncated", "empty", "text"])
def test_image_commands(name, command, corpus, models, tmp_path, run_cli):
    image = corpus["images"][name]
    video = corpus["videos"]["vfr"]
    out = tmp_path / "out.mp4"
    before = None if name in VALID_IMAGES else precious(out)
    argv = command_argv(command, models, video, source=image)
    code, _, err = run_cli(*argv, "--out", out, "--overwrite", "--device", "cpu")
    if name in VALID_IMAGES:
        assert code == 0, err
        assert out.stat().st_size > 0
    else:
        assert_one_line_error(code, err, image.name)
        assert IMAGE_ERRORS[name] in err
        assert out.read_bytes() == before
    assert leftovers(tmp_path) == []


IMAGE_ERRORS = {"tiny": "too small (8x8", "bomb": "too large", "truncated": "truncated", "empty": "file is empty",
                "text": "not an image"}  # fmt: skip


def test_image_modes_become_the_expected_rgb(corpus):
    """Each mode as documented: transparency on white, greyscale and 16-bit as grey, CMYK converted."""
    from leo_video.media.image import load_image_uint8

    images = corpus["images"]
    rgba = moving_frames(1, 80, 64, channels=4)[0].astype(np.float32)
    on_white = rgba[..., :3] * rgba[..., 3:] / 255 + 255 * (1 - rgba[..., 3:] / 255)
    assert np.abs(load_image_uint8(images["rgba"]) - on_white).max() <= 1
    grey16 = load_image_uint8(images["grey16"])
    assert grey16.shape == (64, 80, 3) and grey16[0, 0, 0] == 0 and grey16[-1, -1, 0] == 255  # scaled, not clipped
    assert (grey16[..., 0] == grey16[..., 2]).all()
    assert (load_image_uint8(images["palette_transparent"]) == 255).any()  # colour 0 became white
    for name in ("la", "grey", "grey_jpeg"):
        pixels = load_image_uint8(images[name])
        assert pixels.shape == (64, 80, 3) and (pixels[..., 0] == pixels[..., 1]).all(), name
    assert load_image_uint8(images["cmyk_jpeg"]).shape == (64, 80, 3)


def test_huge_image_is_shrunk_early_and_matches_a_direct_resize(corpus, tmp_path):
    """8000x8000 (64 MP, under the 100 MP limit) through every still-taking command above; here: the
    early Pillow shrink gives what a direct antialiased resize of the full image gives."""
    from leo_video.media.image import from_uint8, load_image, resize_center_crop

    image = corpus["images"]["huge"]
    full = np.asarray(Image.open(image).convert("RGB"))[::4, ::4]  # (2000, 2000, 3): the picture is 125 px blocks
    direct = from_uint8(resize_center_crop(full, 64)).permute(2, 0, 1)  # (3, 64, 64)
    loaded = load_image(image, size=64)  # (3, 64, 64)
    assert loaded.shape == (3, 64, 64)
    assert (loaded - direct).abs().mean() * 127.5 < 1.5  # within 1.5 grey levels on average


@pytest.mark.parametrize("command", ["animate", "edit", "generate"])
def test_huge_image_commands(command, corpus, models, tmp_path, run_cli):
    image = corpus["images"]["huge"]
    argv = command_argv(command, models, corpus["videos"]["vfr"], source=image)
    code, _, err = run_cli(*argv, "--out", tmp_path / "out.mp4", "--device", "cpu")
    assert code == 0, err


# --------------------------------------------------------------------------------------------
# Checkpoints of the wrong model, size or dims

BAD_LIA = {  # checkpoint -> words of the expected error
    "empty": "file is empty", "text": "not a readable PyTorch checkpoint", "other_model": "not a LIA checkpoint",
    "wrong_size": "has shape (8, 8, 2, 2), expected (4, 4, 1, 1)", "lia_torn": "not a readable safetensors file",
    "lmdm": "not a LatentImageAnimator", "missing": "no such file",
}  # fmt: skip
EXPORT_ERRORS = {  # export reads training runs: a folder is a run folder, a file a training checkpoint
    "lia_torn": "no training checkpoint in", "lmdm": "no training checkpoint in", "missing": "no such run folder",
    "other_model": "not a leo-video training checkpoint", "wrong_size": "not a leo-video training checkpoint",
}  # fmt: skip


@pytest.mark.parametrize("command", ["animate", "reconstruct", "edit", "encode-motion", "generate", "export"])
@pytest.mark.parametrize("bad", sorted(BAD_LIA))
def test_wrong_lia_checkpoints(bad, command, corpus, models, tmp_path, run_cli):
    checkpoint = models.get(bad, tmp_path / "missing.pt")
    video = corpus["videos"]["vfr"]
    out = tmp_path / ("out" if command in ("encode-motion", "export") else "out.mp4")
    overwrite = [] if command == "encode-motion" else ["--overwrite"]  # encode-motion resumes an existing store
    before = precious(out) if out.suffix else None
    code, _, err = run_cli(*command_argv(command, models, video, lia=checkpoint), "--out", out, *overwrite)
    assert_one_line_error(code, err, checkpoint.name)
    assert (EXPORT_ERRORS.get(bad, BAD_LIA[bad]) if command == "export" else BAD_LIA[bad]) in err
    assert out.read_bytes() == before if before else not out.exists()


@pytest.mark.parametrize("lmdm, words", [("lmdm_other_dims", "motion_dim 4 does not match the animator's 5"),
                                         ("lia", "expected MotionDiffusion for the motion part")])  # fmt: skip
def test_generate_refuses_parts_that_do_not_fit(lmdm, words, models, tmp_path, run_cli):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("generate", "--lia", models["lia"], "--lmdm", models[lmdm], "--source", models["source"],
                           "--frames", "4", "--out", out)  # fmt: skip
    assert_one_line_error(code, err, "motion")
    assert words in err and not out.exists()


# --------------------------------------------------------------------------------------------
# Config files

BAD_CONFIGS = {  # file content -> words of the expected error
    "unknown_key": ("train:\n  max_stepz: 10\n", "unknown key train.max_stepz (did you mean max_steps?)"),
    "unknown_section": ("bogus:\n  a: 1\n", "unknown key bogus"),
    "out_of_range": ("train:\n  max_steps: -5\n", "train.max_steps = -5 is out of range"),
    "not_a_choice": ("train:\n  mixed_precision: fp8\n", "train.mixed_precision = 'fp8' is not one of"),
    "nan": ("optim:\n  lr: .nan\n", "optim.lr = nan is out of range"),
    "wrong_type": ("train:\n  max_steps: many\n", "train.max_steps = 'many' is not a valid int"),
    "yaml_syntax": ("train: [1, 2\n", "not valid YAML"),
    "not_a_mapping": ("- a\n- b\n", "must be a mapping"),
    "object_tag": ("train: !!python/object/apply:os.system ['touch {marker}']\n", "refused YAML tag"),
    "binary": (b"\xff\xfe\x00bad", "cannot read config"),
}


@pytest.mark.parametrize("kind", ["lia", "lmdm"])
@pytest.mark.parametrize("bad", sorted(BAD_CONFIGS))
def test_bad_config_files(bad, kind, tmp_path, run_cli):
    content, words = BAD_CONFIGS[bad]
    marker = tmp_path / "pwned"
    config = tmp_path / f"{bad}.yaml"
    if isinstance(content, bytes):
        config.write_bytes(content)
    else:
        config.write_text(content.format(marker=marker))
    codes = ["--codes", tmp_path] if kind == "lmdm" else []
    code, out, err = run_cli("train", kind, "--config", config, *codes, "--run-dir", tmp_path / "run")
    assert_one_line_error(code, err, config.name)
    assert words in err and not marker.exists() and not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------
# Numerical faults: NaN weights or NaN motion codes fail clearly instead of writing a black video


@pytest.fixture(scope="module")
def nan_lia(models, tmp_path_factory) -> Path:
    """The tiny LIA with one NaN bias in its last ToRGB: every rendered pixel is NaN."""
    from leo_video.models.lia import LatentImageAnimator

    model = LatentImageAnimator.from_pretrained(models["lia"])
    with torch.no_grad():
        model.dec.to_rgbs[-1].bias.fill_(float("nan"))
    path = tmp_path_factory.mktemp("nan") / "nan_lia"
    model.save_pretrained(path)
    return path


@pytest.mark.parametrize("command", ["animate", "edit", "reconstruct", "generate"])
def test_nan_model_exits_3_and_writes_nothing(command, nan_lia, models, corpus, tmp_path, run_cli):
    video, out = corpus["videos"]["vfr"], tmp_path / "out.mp4"
    before = precious(out)
    argv = command_argv(command, models, video, lia=nan_lia)
    code, _, err = run_cli(*argv, "--out", out, "--overwrite", "--device", "cpu")
    assert_one_line_error(code, err, "nan_lia")
    assert code == 3 and "NaN or inf" in err
    assert out.read_bytes() == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_motion_codes_are_refused(value, models, tmp_path, run_cli):
    from safetensors.torch import save_file

    codes = torch.randn(8, M)
    codes[3, 1] = value
    save_file({"codes": codes}, tmp_path / "codes.safetensors")
    argv = command_argv("generate", models, video=tmp_path)
    code, _, err = run_cli(*argv, "--motion-from", tmp_path / "codes.safetensors", "--out", tmp_path / "o.mp4")
    assert_one_line_error(code, err, "codes.safetensors")
    assert code == 3 and "NaN or inf" in err and not (tmp_path / "o.mp4").exists()


# --------------------------------------------------------------------------------------------
# Untrusted files


def test_every_torch_load_in_the_source_is_weights_only():
    """Static check over src/: each ``torch.load(...)`` passes ``weights_only=True``; no pickle.load, no
    yaml.load / unsafe_load (configs use yaml.safe_load). ``torch.jit.load`` (the I3D detector, TorchScript
    given by the user) is the one documented exception."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "leo_video"
    loads, offenders = 0, []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            where = f"{path.relative_to(src)}:{node.lineno}"
            if (owner, node.func.attr) == ("torch", "load"):
                loads += 1
                safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords)
                offenders += [] if safe else [f"{where}: torch.load without weights_only=True"]
            elif (owner, node.func.attr) in {("pickle", "load"), ("pickle", "loads"), ("yaml", "load"),
                                             ("yaml", "unsafe_load"), ("yaml", "full_load")}:  # fmt: skip
                offenders.append(f"{where}: {owner}.{node.func.attr}")
    assert loads >= 1 and offenders == []


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("part", ["lia", "lmdm"])
def test_exported_folder_with_a_pickle_instead_of_safetensors_never_runs_it(part, models, tmp_path, run_cli):
    import shutil

    folder, marker = tmp_path / part, tmp_path / "pwned"
    shutil.copytree(models[part], folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    torch.save({"weights": _Exploit(marker)}, folder / "diffusion_pytorch_model.bin")
    parts = {"lia": models["lia"], "lmdm": models["lmdm"], part: folder}
    code, _, err = run_cli("generate", "--lia", parts["lia"], "--lmdm", parts["lmdm"], "--source", models["source"],
                           "--frames", "3", "--out", tmp_path / "o.mp4")  # fmt: skip
    assert_one_line_error(code, err, str(folder))
    assert not marker.exists() and not (tmp_path / "o.mp4").exists()


# --------------------------------------------------------------------------------------------
# Existing outputs


@pytest.mark.parametrize("command", ["animate", "edit", "reconstruct", "generate", "manipulate"])
def test_existing_outputs_are_kept_without_overwrite(command, corpus, models, tmp_path, run_cli):
    video = corpus["videos"]["vfr"]
    out = tmp_path / ("sheet" if command == "manipulate" else "out.mp4")
    target = out / "contact_sheet.png" if command == "manipulate" else out
    before = precious(target)
    code, _, err = run_cli(*command_argv(command, models, video), "--out", out, "--device", "cpu")
    assert_one_line_error(code, err, str(out))
    assert "--overwrite" in err and target.read_bytes() == before
