"""LatentImageAnimator: official layout, parity with an independent float64 re-derivation of LIA's
forward (tests/reference/lia_functional.py), recorded outputs, fast paths, rendering API, loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from reference.lia_functional import lia_reference, random_lia_state, reference_motion, seeded_images
from safetensors.torch import load_file

from leo_video.models.lia import Appearance, LatentImageAnimator

REF_DIR = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def lia64() -> LatentImageAnimator:
    """Seeded random size-64 LIA in float64 (the same weights as the recorded outputs)."""
    model = LatentImageAnimator(64).eval()
    model.load_state_dict(random_lia_state(model.state_dict(), 0), strict=True)
    return model.double()


@pytest.fixture(scope="module")
def images64() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(seeded_images(2, 64, seed).double() for seed in (1, 2, 3))


@pytest.fixture(scope="module")
def reference64(lia64, images64) -> dict[str, torch.Tensor]:
    """Float64 reference outputs computed from the layout description (absolute, relative)."""
    sd = {k: v.double() for k, v in lia64.state_dict().items()}
    source, driving, start = images64
    with torch.no_grad():
        start_motion = reference_motion(sd, start)
        return {"absolute": lia_reference(sd, source, driving), "start_motion": start_motion,
                "relative": lia_reference(sd, source, driving, start_motion)}


def _maxabs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


# ----------------------------------------------------------------------------- layout


def test_state_dict_matches_official_table():
    table = json.loads((REF_DIR / "lia256_keys.json").read_text())
    model = LatentImageAnimator(256)
    state = model.state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, s) for k, s, _ in table["keys"]]
    buffers = {name for name, _ in model.named_buffers()}
    assert buffers == {k for k, _, kind in table["keys"] if kind == "buffer"}
    assert sum(p.numel() for p in model.parameters()) == table["total_parameters"]


@pytest.mark.parametrize("size,count", [(64, 43_574_087), (128, 44_755_154)])
def test_parameter_counts(size, count):
    assert sum(p.numel() for p in LatentImageAnimator(size).parameters()) == count


def test_fir_buffers_hold_official_values():
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    K = torch.outer(k, k) / 64
    for name, buf in LatentImageAnimator(64).named_buffers():
        expected = K if name.startswith("enc.") else 4 * K
        assert torch.equal(buf, expected), name


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_float64_matches_reference(lia64, images64, reference64, mode):
    source, driving, _ = images64
    start = reference64["start_motion"] if mode == "relative" else None
    with torch.no_grad():
        out = lia64(source, driving, start)
    assert out.shape == (2, 3, 64, 64) and out.dtype == torch.float64
    assert _maxabs(out, reference64[mode]) <= 1e-10


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_float32_matches_reference(lia64, images64, reference64, mode):
    model = LatentImageAnimator(64).eval()
    model.load_state_dict(lia64.state_dict())
    source, driving, _ = (x.float() for x in images64)
    start = reference64["start_motion"].float() if mode == "relative" else None
    with torch.no_grad():
        out = model(source, driving, start)
    diff = (out.double() - reference64[mode]).abs()
    assert out.dtype == torch.float32
    assert diff.max().item() <= 1e-4 and diff.mean().item() <= 2e-6


def test_reference_ops_path_equals_fast_path(lia64, images64, reference64):
    source, driving, _ = images64
    with torch.no_grad():
        fast = lia64(source, driving, reference64["start_motion"])
        lia64.use_reference_ops(True)
        try:
            literal = lia64(source, driving, reference64["start_motion"])
        finally:
            lia64.use_reference_ops(False)
    assert _maxabs(literal, reference64["relative"]) <= 1e-10
    assert _maxabs(fast, literal) <= 1e-12


def test_size128_matches_reference():
    model = LatentImageAnimator(128).eval()
    model.load_state_dict(random_lia_state(model.state_dict(), 5))
    sd = {k: v.double() for k, v in model.state_dict().items()}
    source, driving = seeded_images(1, 128, 6), seeded_images(1, 128, 7)
    with torch.no_grad():
        start = reference_motion(sd, seeded_images(1, 128, 8).double())
        expected = lia_reference(sd, source.double(), driving.double(), start)
        out32 = model(source, driving, start.float())
        out64 = model.double()(source.double(), driving.double(), start)
    diff = (out32.double() - expected).abs()
    assert diff.max().item() <= 2e-3 and diff.mean().item() <= 3e-5
    assert _maxabs(out64, expected) <= 1e-10


def test_recorded_outputs(lia64, images64):
    """Outputs of the seeded model are pinned (tests/reference/make_lia64_expected.py)."""
    rec = load_file(str(REF_DIR / "lia64_expected.safetensors"))
    weights_sum = sum(v.abs().sum() for v in lia64.state_dict().values())
    assert abs(weights_sum.item() - rec["weights_abs_sum"].item()) <= 1e-6 * weights_sum.item(), "seeded weights drifted"
    assert abs(sum(x.sum() for x in images64).item() - rec["images_sum"].item()) <= 1e-2, "seeded images drifted"
    source, driving, start = images64
    with torch.no_grad():
        assert _maxabs(lia64.encode_motion(start), rec["start_motion"]) <= 1e-5
        assert _maxabs(lia64.encode_motion(driving), rec["driving_motion"]) <= 1e-5
        assert _maxabs(lia64(source, driving), rec["absolute"]) <= 1e-6
        assert _maxabs(lia64(source, driving, start_motion=rec["start_motion"].double()), rec["relative"]) <= 1e-5


# ----------------------------------------------------------------------------- API


def test_render_equals_forward(lia64, images64, reference64):
    source, driving, _ = images64
    start = reference64["start_motion"][:1]
    with torch.no_grad():
        appearance = lia64.encode_appearance(source[:1])
        codes = lia64.encode_motion(driving)  # (2, M)
        frames = lia64.render(appearance, codes, start_motion=start, chunk_size=1)
        assert frames.shape == (2, 3, 64, 64)
        for i in range(2):
            expected = lia64(source[:1], driving[i : i + 1], start)
            assert _maxabs(frames[i : i + 1], expected) <= 1e-12
        absolute = lia64.render(appearance, codes)
        assert _maxabs(absolute, lia64(source[:1].expand(2, -1, -1, -1), driving)) <= 1e-12


def test_appearance_expand_does_not_copy(lia64, images64):
    with torch.no_grad():
        app = lia64.encode_appearance(images64[0][:1])
    assert isinstance(app, Appearance) and app.latent.shape == (1, 512) and app.motion.shape == (1, 20)
    assert [f.shape[-1] for f in app.features] == [8, 16, 32, 64]
    assert [f.shape[1] for f in app.features] == [512, 512, 512, 256]
    big = app.expand(5)
    assert all(f.shape[0] == 5 and f.stride(0) == 0 and f.data_ptr() == g.data_ptr()
               for f, g in zip(big.features, app.features))
    with pytest.raises(ValueError):
        big.expand(2)


def test_motion_directions_orthonormal_qr(lia64):
    with torch.no_grad():
        q = lia64.motion_directions()
        expected = torch.linalg.qr(lia64.dec.direction.weight + 1e-8).Q
    assert q.shape == (512, 20)
    assert torch.allclose(q.t() @ q, torch.eye(20, dtype=q.dtype), atol=1e-12)
    assert torch.equal(q, expected)


def test_latent_from_motion_relative_and_absolute(lia64, images64):
    with torch.no_grad():
        app = lia64.encode_appearance(images64[0])
        q = lia64.motion_directions()
        codes = torch.randn(2, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        start = torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        absolute = lia64.latent_from_motion(app, codes)
        relative = lia64.latent_from_motion(app, codes, start)
    assert torch.allclose(absolute, app.latent + codes @ q.t(), atol=1e-12)
    assert torch.allclose(relative, app.latent + (codes - start + app.motion) @ q.t(), atol=1e-12)
    # relative transfer with the source's own code as start is absolute transfer
    with torch.no_grad():
        same = lia64.latent_from_motion(app, codes, app.motion)
    assert torch.allclose(same, absolute, atol=1e-12)


def test_deterministic_and_noise_weights_inert(images64):
    model = LatentImageAnimator(64).eval()
    model.load_state_dict(random_lia_state(model.state_dict(), 3))
    source, driving, _ = (x.float() for x in images64)
    with torch.no_grad():
        first = model(source, driving)
        torch.manual_seed(123)
        second = model(source, driving)
        for name, p in model.named_parameters():
            if name.endswith("noise.weight") or name.startswith("dec.to_rgb1."):
                p.add_(1.0)
        third = model(source, driving)
    assert torch.equal(first, second) and torch.equal(first, third)
