"""The ControlNet first-frame editor (`leo-video edit --editor controlnet`) on tiny random weights (CPU).

A tiny Stable Diffusion + ControlNet (random UNet, VAE, CLIP text encoder, a 60-token CLIP BPE
vocabulary written here) is saved in the diffusers layout of the real models — a base pipeline folder
and a separate ControlNet folder — and loaded back through the editor's own ``local_files_only`` path.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from leo_video.editing.canny import canny_edges
from leo_video.media.image import load_image_uint8, numpy_to_frames, resize_center_crop
from leo_video.media.video import VideoReader, probe_video, write_video
from leo_video.models.lia import LatentImageAnimator

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64


def _tiny_tokenizer(folder):
    """A CLIP BPE tokenizer over single letters plus two merges ("re", "red</w>")."""
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(c + "</w>" for c in letters), "re", "red</w>"]
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\nr e\nre d</w>\n")
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77), len(tokens)


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    """(base model folder, ControlNet folder) of a random SD-1.5-shaped pipeline: latents 8x8 at 64^2."""
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("sd")
    torch.manual_seed(0)
    tokenizer, vocab_size = _tiny_tokenizer(root / "tokenizer_src")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=16))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
    # the control image enters at full resolution and is brought to the latent size by 3 stride-2 convs,
    # as the VAE's 4 blocks downsample by 8: both must agree, as in SD 1.5
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 4, 8, 8))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(4, 4, 4, 4),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=2, sample_size=SIZE)
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    base = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    base.save_pretrained(root / "sd15")
    controlnet.save_pretrained(root / "canny")
    return root / "sd15", root / "canny"


@pytest.fixture(scope="module")
def editor(tiny_sd):
    from leo_video.editing.controlnet import ControlNetEditor, ControlNetEditorConfig

    config = ControlNetEditorConfig(prompt="a red robot", base_model=str(tiny_sd[0]), controlnet=str(tiny_sd[1]),
                                    steps=4, resolution=SIZE, device="cpu")
    return ControlNetEditor(config)


@pytest.fixture(scope="module")
def lia(tmp_path_factory):
    torch.manual_seed(0)
    model = LatentImageAnimator(size=SIZE, style_dim=32, motion_dim=5, channel_max=16).eval()
    path = tmp_path_factory.mktemp("lia") / "official.pt"
    torch.save({"gen": model.state_dict(), "dis": {}}, path)  # the official checkpoint layout
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from leo_video.data.synthetic import render_synthetic_video

    path = tmp_path_factory.mktemp("clip") / "person.mp4"
    write_video(path, render_synthetic_video(seed=5, num_frames=6, size=80), fps=12)  # 80: not the model size
    return path


def _square(value_inside: float = 1.0, value_outside: float = -1.0) -> torch.Tensor:
    image = torch.full((3, SIZE, SIZE), value_outside)
    image[:, 16:48, 16:48] = value_inside  # the square's boundary lies between pixels 15|16 and 47|48
    return image


# ----------------------------------------------------------------------------- Canny


def test_canny_marks_the_border_of_a_square_and_nothing_else():
    edges = canny_edges(_square()).numpy()  # (64, 64) bool
    ys, xs = np.nonzero(edges)
    near_x = (np.abs(xs - 15.5) <= 1) | (np.abs(xs - 47.5) <= 1)
    near_y = (np.abs(ys - 15.5) <= 1) | (np.abs(ys - 47.5) <= 1)
    assert ((near_x & (ys >= 14) & (ys <= 49)) | (near_y & (xs >= 14) & (xs <= 49))).all()  # only on the border
    for k in range(18, 46):  # every side is traced, one pixel thick (non-maximum suppression)
        assert edges[k, 14:18].sum() == 1 and edges[k, 46:50].sum() == 1
        assert edges[14:18, k].sum() == 1 and edges[46:50, k].sum() == 1
    assert not canny_edges(torch.zeros(3, SIZE, SIZE)).any()


def test_canny_follows_opencv_conventions():
    # colour: the channel with the strongest gradient counts, so a red-only square has the same edges
    red_only = _square()
    red_only[1:] = -1
    assert torch.equal(canny_edges(red_only), canny_edges(_square()))
    # thresholds are on the L1 Sobel magnitude of 0..255 pixels: a straight step of 20 gives 4 * 20 = 80
    faint = torch.full((3, SIZE, SIZE), -1.0)
    faint[:, :, 32:] += 20 / 127.5
    assert not canny_edges(faint, low=100, high=200).any()
    assert canny_edges(faint, low=50, high=79).sum() == SIZE and not canny_edges(faint, low=50, high=81).any()


# cv2.Canny(image, 100, 200) > 0 recorded with opencv-python-headless 5.0.0, packed with np.packbits: the edge
# map ControlNet's Canny annotator would give (pins the call: RGB order, uint8 rounding, thresholds)
OPENCV_PATTERN_EDGES = (
    "000000080000000008ff000000f7000000101080000080903e000c1f2f00001080200100447f48380081804701013600b026004c"
    "1898200258612d090490c9044405a3012208012642020a01449222190a4924d221024a650e850240c8b2501441892e1a044b12"
    "42810542108231052411020504212212252a922424122a98484c15225c40184925468033022548bfc60d2481000c1124812018"
    "252495099049500249009240022021204964850243490534c484490b1029094848434a1248521090a44291cf6f29"
)
OPENCV_REAL_FRAMES = {  # first frame (256^2, as decoded) -> (edge pixels, sha256 of the packed map)
    "videos/fullbody/taichi_lia_1.mp4": (4483, "0e022d40ca6960813ebba76fdb99121330234e32a757f48df631b1ab46b852c4"),
    "videos/faces/face_lia_vox_1.mp4": (2606, "93dbf34d1ddc1c35f82ebf525f16307bca38570af952567377aaf7999a6b4043"),
}


def test_canny_equals_opencv_on_a_pattern_with_every_direction():
    y, x = np.mgrid[0:40, 0:40]
    disk = ((x - 20) ** 2 + (y - 18) ** 2 < 120) * 200 + 30
    pixels = np.stack([(x * 9 + y * 4) % 256, disk, (x * y) % 97 * 2], -1).astype(np.uint8)  # (40, 40, 3)
    edges = canny_edges(numpy_to_frames(pixels)).numpy()
    assert edges.sum() == 427
    assert np.packbits(edges).tobytes().hex() == OPENCV_PATTERN_EDGES


def test_canny_equals_opencv_on_real_frames(shared_data):
    import hashlib

    for name, (count, digest) in OPENCV_REAL_FRAMES.items():
        edges = canny_edges(numpy_to_frames(VideoReader(shared_data / name).read([0])[0])).numpy()
        assert edges.sum() == count, name
        assert hashlib.sha256(np.packbits(edges).tobytes()).hexdigest() == digest, name


# ----------------------------------------------------------------------------- the editor


def test_editor_edits_the_first_frame_under_its_edge_map(editor, clip):
    first = numpy_to_frames(VideoReader(clip).read([0])[0])  # (3, 80, 80)
    result = editor(first)
    original = editor.prepare(first)  # (3, 64, 64)
    assert result.edited.shape == (3, SIZE, SIZE) and result.edges.shape == (SIZE, SIZE)
    assert result.edited.min() >= -1 and result.edited.max() <= 1
    # the control image is the Canny edge map of the original frame, with edges on the figure
    assert torch.equal(result.edges, canny_edges(original)) and result.edges.sum() > 50
    assert (result.edited - original).abs().mean() > 0.05  # the frame was changed
    assert torch.equal(editor(first).edited, result.edited)  # same seed, same edit
    other = editor(first[:, :, 8:])  # non-square input: centre-cropped
    assert other.edited.shape == (3, SIZE, SIZE) and not torch.equal(other.edited, result.edited)


def test_a_frame_blanked_by_the_safety_checker_is_an_error_not_an_edit(editor):
    from types import SimpleNamespace

    from leo_video.editing.controlnet import ControlNetEditor
    from leo_video.errors import LeoError

    def flagged(**kwargs):  # what a pipeline with a safety checker returns when it blanks the image
        return SimpleNamespace(images=torch.zeros(1, 3, SIZE, SIZE), nsfw_content_detected=[True])

    with pytest.raises(LeoError, match="safety checker"):
        ControlNetEditor(editor.config, pipeline=flagged)(torch.zeros(3, SIZE, SIZE))


def test_edit_command_with_controlnet_animates_the_edited_frame(run_cli, tiny_sd, lia, clip, tmp_path):
    edited_png, out = tmp_path / "edited.png", tmp_path / "edited.mp4"
    code, stdout, err = run_cli(
        "edit", "--lia", lia, "--video", clip, "--editor", "controlnet", "--prompt", "a red robot",
        "--base-model", tiny_sd[0], "--controlnet", tiny_sd[1], "--edit-steps", "3", "--edit-size", "64",
        "--save-edited-frame", edited_png, "--out", out, "--device", "cpu")
    assert code == 0, err
    info = probe_video(out)
    assert (info.frames, info.width, info.height, info.fps) == (6, SIZE, SIZE, 12)
    saved = load_image_uint8(edited_png)
    original = resize_center_crop(VideoReader(clip).read([0])[0], SIZE)
    assert saved.shape == (SIZE, SIZE, 3) and np.abs(saved.astype(int) - original).mean() > 5
    # the same code path as a hand-edited frame: giving the saved frame back renders the same video
    again = tmp_path / "given.mp4"
    code, _, err = run_cli("edit", "--lia", lia, "--video", clip, "--edited-first-frame", edited_png,
                           "--out", again, "--device", "cpu")
    assert code == 0, err
    assert again.read_bytes() == out.read_bytes()


def test_missing_weights_are_one_line_naming_what_to_download(run_cli, tiny_sd, lia, clip, tmp_path):
    cases = [
        (["--base-model", tmp_path / "no-sd15", "--controlnet", tiny_sd[1]],
         ["no-sd15", "hf download stable-diffusion-v1-5"]),
        (["--base-model", tiny_sd[0], "--controlnet", "leo-video-tests/not-cached"],
         ["leo-video-tests/not-cached", "ControlNet", "hf download lllyasviel/sd-controlnet-canny"]),
        (["--base-model", tmp_path / "no-sd15", "--controlnet", tmp_path / "no-canny"],  # both named at once
         ["no-sd15", "no-canny", "hf download stable-diffusion-v1-5", "hf download lllyasviel"]),
    ]
    for k, (argv, named) in enumerate(cases):
        out = tmp_path / f"o{k}.mp4"
        code, _, err = run_cli("edit", "--lia", lia, "--video", clip, "--editor", "controlnet", "--prompt", "x",
                               "--edit-size", "64", *argv, "--out", out, "--device", "cpu")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert all(name in err for name in named), err
        assert not out.exists()


def test_a_folder_that_is_not_a_model_is_a_checkpoint_error(run_cli, tiny_sd, lia, clip, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("edit", "--lia", lia, "--video", clip, "--editor", "controlnet", "--prompt", "x",
                           "--base-model", tiny_sd[0], "--controlnet", tmp_path / "empty", "--out", tmp_path / "o.mp4")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "empty: not a diffusers" in err, err


def test_editor_options_and_frame_sources_are_checked(run_cli, lia, clip, tmp_path):
    png = tmp_path / "given.png"
    png.write_bytes(b"")  # never read: the arguments are refused first
    base = ["edit", "--lia", lia, "--video", clip, "--out", tmp_path / "o.mp4"]
    refused = [
        (["--edited-first-frame", png, "--prompt", "a robot"], "--prompt: only with --editor controlnet"),
        (["--edited-first-frame", png, "--save-edited-frame", tmp_path / "e.png"], "--save-edited-frame"),
        (["--editor", "controlnet"], "needs --prompt"),
        (["--editor", "controlnet", "--prompt", "x", "--edit-steps", "0"], "--edit-steps 0: must be at least 1"),
        (["--editor", "controlnet", "--prompt", " "], "--prompt: empty"),
        (["--editor", "controlnet", "--prompt", "x", "--edit-size", "100"], "--edit-size 100"),
        (["--editor", "controlnet", "--prompt", "x", "--device", "cpu", "--dtype", "fp16"], "--dtype fp16"),
    ]
    for argv, message in refused:
        code, _, err = run_cli(*base, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (argv, err)
    for argv in (["--editor", "controlnet", "--edited-first-frame", png, "--prompt", "x"], []):
        with pytest.raises(SystemExit) as exit_info:  # argparse: exactly one source of the edited frame
            run_cli(*base, *argv)
        assert exit_info.value.code == 2
    assert not (tmp_path / "o.mp4").exists()


def test_without_transformers_the_editor_says_what_to_install(run_cli, lia, clip, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    code, _, err = run_cli("edit", "--lia", lia, "--video", clip, "--editor", "controlnet", "--prompt", "x",
                           "--out", tmp_path / "o.mp4")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "leo-video[edit]" in err, err


def test_leo_video_and_the_edit_command_import_without_transformers():
    script = (
        "import sys; sys.modules['transformers'] = None\n"
        "import leo_video, leo_video.editing.controlnet\n"
        "from leo_video.cli.main import build_parser\n"
        "build_parser().parse_args(['edit', '--lia', 'x', '--video', 'v', '--editor', 'controlnet', '--prompt', 'p', "
        "'--out', 'o.mp4'])\n"
        "assert leo_video.ControlNetEditor is leo_video.editing.controlnet.ControlNetEditor\n"
        "assert sys.modules['transformers'] is None\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

