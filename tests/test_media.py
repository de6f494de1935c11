"""Video/image I/O: value mapping, image loading of every mode, mp4/gif/frame-folder round trips,
real clips, bad files through `leo-video probe`, grids and contact sheets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from leo_video.errors import InputError
from leo_video.media.image import (
    frames_to_numpy,
    from_uint8,
    load_image,
    resize_center_crop,
    save_image,
    to_uint8,
)
from leo_video.media.video import VideoReader, VideoWriter, probe_video, read_video, write_video


def moving_frames(t: int = 12, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth moving colour ramps, uint8 (T, H, W, 3): compressible, every frame different."""
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    frames = []
    for i in range(t):
        r = 127 + 100 * np.sin(xx / 9 + i / 2)
        g = 127 + 100 * np.cos(yy / 7 - i / 3)
        b = np.full_like(xx, 40 + 15 * i)
        frames.append(np.stack([r, g, b], -1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- value mapping


def test_uint8_mapping_is_fixed_and_round_trips():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 2.0]).view(1, 5, 1).expand(3, 5, 2)
    u = to_uint8(x)
    assert u.dtype == torch.uint8 and u.shape == x.shape
    assert u[0, :, 0].tolist() == [0, 0, 128, 255, 255]  # (0+1)/2*255 = 127.5 rounds to 128
    pixels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(from_uint8(pixels)), pixels)
    video = torch.rand(4, 3, 8, 10) * 2 - 1
    assert frames_to_numpy(video).shape == (4, 8, 10, 3)


def test_from_uint8_takes_read_only_arrays_without_warning(recwarn):
    """Decoded frames and broadcast views are read-only numpy arrays; torch warns on wrapping them
    (`make demo` printed that warning), so they are copied first and the source stays untouched."""
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    frame.flags.writeable = False
    out = from_uint8(frame)
    out += 1  # writing to the result must not reach the read-only source
    assert frame[0, 0, 0] == 0 and not recwarn.list
    assert from_uint8(np.broadcast_to(frame[:1], (4, 3, 3))).shape == (4, 3, 3) and not recwarn.list


# ----------------------------------------------------------------------------- images


def test_load_image_modes_become_rgb(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :15, 3] = 255  # left half opaque red, right half fully transparent -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(np.full((20, 20), 100, np.uint8), "L").save(tmp_path / "grey.png")
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(tmp_path / "grey16.png")
    Image.new("RGB", (20, 20), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")

    img = load_image(tmp_path / "rgba.png")  # centre-cropped 20x20 from columns 5..25
    assert img.shape == (3, 20, 20) and img.dtype == torch.float32
    px = to_uint8(img)
    assert px[:, 0, 0].tolist() == [255, 0, 0] and px[:, 0, -1].tolist() == [255, 255, 255]
    assert to_uint8(load_image(tmp_path / "grey.png"))[:, 3, 3].tolist() == [100, 100, 100]
    grey16 = to_uint8(load_image(tmp_path / "grey16.png"))[:, 3, 3].tolist()
    assert grey16 == [round(40000 / 65535 * 255)] * 3  # scaled, not clipped to white
    assert to_uint8(load_image(tmp_path / "pal.png"))[:, 0, 0].tolist() == [10, 200, 30]
    assert load_image(tmp_path / "grey.png", size=64).shape == (3, 64, 64)


def test_load_16bit_rgb_png(tmp_path):
    import av

    pixels = np.zeros((20, 24, 3), np.uint16)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 65535, 40000, 2000
    with av.open(str(tmp_path / "rgb16.png"), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 24, 20, "rgb48be"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb48le")))
        container.mux(stream.encode(None))
    rgb = to_uint8(load_image(tmp_path / "rgb16.png"))[:, 5, 5].tolist()
    assert [abs(a - b) <= 1 for a, b in zip(rgb, [255, 156, 8])] == [True] * 3


def test_load_image_errors_name_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello, not an image")
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    good = tmp_path / "cut.png"
    Image.fromarray(moving_frames(1, 64, 64)[0]).save(good)
    (tmp_path / "cut2.png").write_bytes(good.read_bytes()[:200])
    for name in ["missing.png", "empty.png", "text.png", "tiny.png", "cut2.png"]:
        with pytest.raises(InputError) as info:
            load_image(tmp_path / name)
        message = str(info.value)
        assert message.startswith(str(tmp_path / name)) and "\n" not in message


def test_huge_image_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (20000, 20)).save(path)
    with pytest.raises(InputError, match="too large"):
        load_image(path)


def test_resize_center_crop_and_save_image(tmp_path):
    frames = moving_frames(3, 40, 80)
    out = resize_center_crop(frames, 16)
    assert out.shape == (3, 16, 16, 3) and out.dtype == np.uint8
    assert resize_center_crop(frames[0], 40).shape == (40, 40, 3)
    assert np.array_equal(resize_center_crop(frames[0], 40), frames[0][:, 20:60])  # crop only
    image = torch.rand(3, 20, 20) * 2 - 1
    save_image(tmp_path / "x.png", image)
    assert torch.equal(to_uint8(load_image(tmp_path / "x.png")), to_uint8(image))
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temp file left behind


# ----------------------------------------------------------------------------- video round trips


def test_mp4_round_trip(tmp_path):
    frames = moving_frames(12, 48, 64)
    path = write_video(tmp_path / "a.mp4", frames, fps=12.5)
    info = probe_video(path)
    assert (info.frames, info.width, info.height, info.codec) == (12, 64, 48, "h264")
    assert info.fps == pytest.approx(12.5)
    back = VideoReader(path).read(range(12))
    assert back.shape == frames.shape
    # yuv420p halves chroma resolution: ~3 levels of error on these saturated ramps even at crf 0.
    assert np.abs(back.astype(float) - frames).mean() < 4.0
    video = read_video(path, size=32, start=2, step=3)
    assert video.shape == (4, 3, 32, 32) and video.min() >= -1 and video.max() <= 1


def test_float_tensor_writer_and_odd_size(tmp_path):
    video = torch.from_numpy(moving_frames(5, 33, 45)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with VideoWriter(tmp_path / "odd.mp4", fps=10) as writer:
        writer.write(video[:4])
        writer.write(video[4])  # (3, H, W) single frame
    info = probe_video(tmp_path / "odd.mp4")
    assert (info.frames, info.width, info.height) == (5, 46, 34)  # padded to even for yuv420p
    back = VideoReader(tmp_path / "odd.mp4").read([4])[0, :33, :45]
    assert np.abs(back.astype(float) - frames_to_numpy(video[4])).mean() < 4.0


@pytest.mark.parametrize("suffix", [".mkv", ".mov"])
def test_other_containers_round_trip(tmp_path, suffix):
    frames = moving_frames(9, 32, 48)
    path = write_video(tmp_path / f"a{suffix}", frames, fps=15)
    info = probe_video(path)  # mkv states no frame count: it is counted by demuxing
    assert (info.frames, info.width, info.height, info.fps) == (9, 48, 32, 15.0)
    assert np.abs(VideoReader(path).read(range(9)).astype(float) - frames).mean() < 4.0


@pytest.mark.parametrize("name, codec", [("a.avi", "mpeg4"), ("a.webm", "libvpx-vp9")])
def test_reads_avi_and_webm(tmp_path, name, codec):
    import av

    frames = moving_frames(15, 32, 48)
    with av.open(str(tmp_path / name), "w") as container:
        stream = container.add_stream(codec, rate=15)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.bit_rate = 4_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    info = probe_video(tmp_path / name)
    assert (info.frames, info.width, info.height, info.fps) == (15, 48, 32, 15.0)
    back = VideoReader(tmp_path / name).read([14, 0, 7])
    assert np.abs(back.astype(float) - frames[[14, 0, 7]]).mean() < 6.0


def test_rotation_metadata_is_applied(tmp_path):
    import av

    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:, :8] = 255  # white stripe on the left edge
    with av.open(str(tmp_path / "rot.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(90)  # as phones tag portrait clips
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    info = probe_video(tmp_path / "rot.mp4")
    assert (info.width, info.height) == (32, 48)  # displayed size
    upright = VideoReader(tmp_path / "rot.mp4").read([0])[0]
    assert upright.shape == (48, 32, 3)
    assert upright[-6:].mean() > 200 and upright[:-10].mean() < 30  # left edge turned to the bottom


def test_gif_round_trip(tmp_path):
    frames = moving_frames(6, 32, 40)
    frames = np.concatenate([frames, frames[-1:], frames[-1:]])  # a held frame must stay two frames
    write_video(tmp_path / "a.gif", frames, fps=10)
    info = probe_video(tmp_path / "a.gif")
    assert (info.frames, info.width, info.height, info.codec, info.fps) == (8, 40, 32, "gif", 10.0)
    back = VideoReader(tmp_path / "a.gif").read(range(8))
    assert back.shape == frames.shape and np.abs(back.astype(float) - frames).mean() < 4.0
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 8 and gif.info["loop"] == 0 and gif.info["duration"] == 100


def test_writer_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "b.mp4", fps=10) as writer:
            writer.write(moving_frames(3))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_reader_ranges_and_seeking(tmp_path):
    # A marker pixel encodes the frame index; short GOP so that reads deep in the file seek.
    t = 40
    frames = moving_frames(t, 32, 32)
    frames[:, :8, :8] = (np.arange(t) * 6)[:, None, None, None]
    path = tmp_path / "idx.mp4"
    with VideoWriter(path, fps=25, crf=10, keyframe_interval=8) as writer:
        writer.write(frames)
    reader = VideoReader(path)
    assert len(reader) == t
    marks = lambda fs: [round(float(f[2:6, 2:6].mean()) / 6) for f in fs]  # noqa: E731
    assert marks(reader.iter_frames(3, 20, 5)) == [3, 8, 13, 18]
    assert marks(reader.read([35, 1, 35, 22])) == [35, 1, 35, 22]
    assert marks(reader.iter_frames(37)) == [37, 38, 39]


def test_concurrent_iterators_are_independent_and_close_their_decoders(tmp_path):
    t = 24
    frames = moving_frames(t, 32, 32)
    frames[:, :8, :8] = (np.arange(t) * 10)[:, None, None, None]
    path = write_video(tmp_path / "idx.mp4", frames, fps=25, crf=10)
    reader = VideoReader(path)
    marks = lambda fs: [round(float(f[2:6, 2:6].mean()) / 10) for f in fs]  # noqa: E731
    a, b = reader.iter_frames(), reader.iter_frames()
    interleaved = [(next(a), next(a), next(b)) for _ in range(5)]
    assert marks(x for x, _, _ in interleaved) == [0, 2, 4, 6, 8]
    assert marks(y for _, _, y in interleaved) == [0, 1, 2, 3, 4]
    del a, b, interleaved
    tasks = Path("/proc/self/task")
    if tasks.is_dir():  # FFmpeg's decoder threads must not outlive a read (they break DataLoader forks)
        before = len(list(tasks.iterdir()))
        for _ in range(3):
            reader.read([3, 20])
            next(reader.iter_frames(5))
        assert len(list(tasks.iterdir())) <= before


def test_frame_folder(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    frames = moving_frames(11, 24, 30)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame{i}.png")  # frame10 must sort after frame9
    info = probe_video(folder)
    assert (info.frames, info.width, info.height, info.codec) == (11, 30, 24, "frames")
    reader = VideoReader(folder)
    assert np.array_equal(reader.read([10, 2]), frames[[10, 2]])
    assert read_video(folder, size=16).shape == (11, 3, 16, 16)


# ----------------------------------------------------------------------------- probe and bad files


def test_probe_cli_good_and_bad_files(tmp_path, run_cli):
    good = write_video(tmp_path / "good.mp4", moving_frames(30, 32, 32), fps=10)
    data = good.read_bytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is a text file, not a video\n")
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])  # header kept, frames missing
    (tmp_path / "stub.mp4").write_bytes(data[:64])  # only the start of the header
    audio_only = tmp_path / "noise.wav"
    audio_only.write_bytes(b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + bytes(16) + b"data" + bytes(4))
    (tmp_path / "empty_dir").mkdir()
    bad = {
        "empty.mp4": "file is empty",
        "text.mp4": "not a video",
        "cut.mp4": "truncated",
        "stub.mp4": "truncated",
        "missing.mp4": "no such file",
        "empty_dir": "no png/jpg frames",
        "noise.wav": "not a video",
    }
    code, out, err = run_cli("probe", good, *(tmp_path / name for name in bad))
    assert code != 0
    (line,) = out.strip().splitlines()
    assert json.loads(line) == {
        "path": str(good), "frames": 30, "fps": 10.0, "width": 32, "height": 32, "codec": "h264"
    }
    errors = err.strip().splitlines()
    assert len(errors) == len(bad) and "Traceback" not in err
    for line, (name, reason) in zip(errors, bad.items()):
        assert line.startswith(f"leo-video probe: error: {tmp_path / name}: ") and reason in line, line
    assert run_cli("probe", good)[0] == 0


def test_reading_a_truncated_file_is_an_input_error(tmp_path):
    good = write_video(tmp_path / "good.mp4", moving_frames(30, 32, 32), fps=10)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:-400])
    with pytest.raises(InputError, match="cut.mp4: truncated"):
        read_video(tmp_path / "cut.mp4")


def test_a_file_removed_after_indexing_is_an_input_error(tmp_path):
    """A dataset indexes its videos once; a file deleted or replaced later (a sync, a carried copy) must give
    a one-line error naming it — also when a read that skips to a later keyframe reopens it mid-iteration
    (that path once masked the error with an AttributeError from closing the old decoder twice)."""
    path = tmp_path / "gone.mp4"
    with VideoWriter(path, fps=10, keyframe_interval=8) as writer:
        writer.write(moving_frames(30, 32, 32))
    reader = VideoReader(path)
    frames = reader.iter_frames(0, 30, 20)  # frame 20 after frame 0: seek to keyframe 16, a new decoder
    next(frames)
    path.unlink()
    with pytest.raises(InputError, match="gone.mp4: no such file"):
        next(frames)
    with pytest.raises(InputError, match="gone.mp4: no such file"):
        reader.read([3])


def test_every_real_clip_probes_and_decodes(shared_data):
    clips = sorted(p for p in (shared_data / "videos").rglob("*") if p.is_file())
    assert len(clips) >= 30
    for clip in clips:
        info = probe_video(clip)
        assert info.frames > 10 and info.fps > 0 and info.codec, clip
        reader = VideoReader(clip, size=64)
        frames = reader.read([0, 1, 2])
        assert frames.shape == (3, 64, 64, 3) and frames.std() > 1, clip  # real content, not blank
        native = next(VideoReader(clip).iter_frames())
        assert native.shape == (info.height, info.width, 3), clip


def test_real_clip_random_access_matches_sequential(shared_data):
    clip = shared_data / "videos" / "faces" / "face_lia_vox_4.mov"  # 1169 frames, 5 keyframes
    reader = VideoReader(clip, size=32)
    sequential = list(reader.iter_frames(700, 703))
    jumped = reader.read([702, 700, 1168])
    assert np.array_equal(jumped[0], sequential[2]) and np.array_equal(jumped[1], sequential[0])


# ----------------------------------------------------------------------------- grids and sheets


def test_make_grid_layout_and_hold_last_frame():
    from leo_video.media.grid import make_grid

    a = torch.full((4, 3, 8, 10), -1.0)  # black, 4 frames
    b = torch.full((2, 3, 8, 10), 0.5)  # 2 frames: held
    c = torch.linspace(-1, 1, 3).view(3, 1, 1, 1).expand(3, 3, 8, 10)
    grid = make_grid([a, b, c], ncols=2, padding=2)
    assert grid.shape == (4, 3, 8 + 2 + 8, 10 + 2 + 10)
    assert torch.all(grid[:, :, :8, :10] == -1) and torch.all(grid[:, :, :8, 10:12] == 1)  # white gutter
    assert torch.all(grid[3, :, :8, 12:] == 0.5)  # b held its last frame
    assert torch.all(grid[3, :, 10:, :10] == 1.0) and torch.all(grid[:, :, 10:, 12:] == 1.0)  # c held, blank cell
    side = make_grid([a, b], padding=0)
    assert side.shape == (4, 3, 8, 20)


def test_contact_sheet_uses_fixed_mapping(tmp_path):
    from leo_video.media.grid import contact_sheet, save_contact_sheet

    dark = torch.full((10, 3, 16, 16), -0.6)  # a dark video must stay dark (no min-max stretch)
    ramp = torch.linspace(-1, 1, 10).view(10, 1, 1, 1).expand(10, 3, 16, 16)
    sheet = np.asarray(contact_sheet([dark, ramp], num_frames=5, gutter=4))
    assert sheet.shape == (4 + 2 * 16 + 4 + 4, 4 + 5 * 16 + 4 * 4 + 4, 3)
    assert sheet[4 + 8, 4 + 8].tolist() == [51] * 3  # (-0.6 + 1) / 2 * 255 = 51
    ends = sheet[4 + 16 + 4 + 8, [4 + 8, 4 + 4 * 20 + 8]]
    assert ends.tolist() == [[0] * 3, [255] * 3]  # first and last frames of the ramp
    assert sheet[0, 0].tolist() == [255] * 3
    path = save_contact_sheet(tmp_path / "sheet.png", [dark, ramp], num_frames=5, labels=["dark", "ramp"])
    with Image.open(path) as image:
        assert image.height == sheet.shape[0] and image.width > sheet.shape[1]


def test_caption_video_adds_a_labelled_strip_and_keeps_the_frames():
    from leo_video.media.grid import caption_video

    video = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 3, 16, 64)
    out = caption_video(video, "transfer", height=12)
    assert out.shape == (5, 3, 16 + 12, 64) and torch.equal(out[:, :, :16], video)
    strip = out[:, :, 16:]
    assert torch.equal(strip[0], strip[4])  # the same caption in every frame
    dark = (strip[0] < 0).any(0)  # text pixels: black on white
    assert 10 < int(dark.sum()) < 12 * 64 // 2 and not dark[:, 56:].any()  # "transfer" fits in ~50 pixels
    assert not (caption_video(video, "", height=12)[:, :, 16:] < 1).any()  # no text: a white strip


def test_mp4_writes_are_byte_identical(tmp_path):
    """Same frames -> same file (x264 runs single-threaded), so synthetic datasets are reproducible."""
    from leo_video.data.synthetic import render_synthetic_video

    frames = render_synthetic_video(seed=1, num_frames=24, size=64)
    blobs = set()
    for k in range(4):
        write_video(tmp_path / f"v{k}.mp4", frames, fps=15)
        blobs.add((tmp_path / f"v{k}.mp4").read_bytes())
    assert len(blobs) == 1


# A child process writes one clip, then three times another clip followed by the first again, and prints
# the first clip's sha256 each time. The clip is the demo's driving video (synthetic seed 9001, index 1):
# with x264's macroblock tree on, its bytes depended on what the process had encoded before (an
# uninitialised stack value in the bundled x264), so `leo-video demo` wrote a different transfer.mp4 per run.
_REWRITE_SCRIPT = """
import sys
from pathlib import Path
from leo_video.data.synthetic import render_synthetic_video
from leo_video.media.video import write_video
from leo_video.utils.hashing import sha256_file
out = Path(sys.argv[1])
clip = render_synthetic_video(9001, 40, 64, index=1)
print(sha256_file(write_video(out / "clip.mp4", clip, fps=15)))
for k in range(3):
    write_video(out / f"other{k}.mp4", render_synthetic_video(k, 12, 80 + 16 * k), fps=15)
    print(sha256_file(write_video(out / f"clip{k}.mp4", clip, fps=15)))
"""


def test_mp4_bytes_depend_on_the_frames_alone_across_processes(tmp_path):
    """Same frames -> same file in two fresh processes, whatever else each encoded first (`leo-video demo`)."""
    import os
    import subprocess
    import sys

    import leo_video

    src = str(Path(leo_video.__file__).parents[1])  # this checkout's package in the children
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    hashes = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        done = subprocess.run([sys.executable, "-c", _REWRITE_SCRIPT, str(tmp_path / run)], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        hashes += done.stdout.split()
    assert len(hashes) == 8 and len(set(hashes)) == 1, hashes
