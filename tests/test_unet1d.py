"""TemporalUNet1D and StartCodeMLP: shapes for any length, zero-init output, save/load, config checks."""

from __future__ import annotations

import pytest
import torch

from leo_video.errors import ConfigError
from leo_video.models.start_code import START_CODE_PRESETS, StartCodeMLP
from leo_video.models.unet1d import UNET1D_PRESETS, TemporalUNet1D

TINY = dict(in_channels=5, out_channels=5, block_channels=(16, 32, 32), layers_per_block=1,
            attention_levels=(False, False, True), attention_head_dim=8, norm_groups=8)


def _randomize_output(model: torch.nn.Module) -> None:
    """Give the zero-initialised output layer weights, so outputs depend on the input."""
    torch.manual_seed(0)
    for p in model.parameters():
        if p.abs().sum() == 0:
            p.data.normal_(0, 0.1)


@pytest.mark.parametrize("length", [1, 2, 3, 7, 16, 33])
def test_unet_shapes_any_length(length):
    model = TemporalUNet1D(**TINY)
    _randomize_output(model)
    x = torch.randn(2, 5, length)
    out = model(x, torch.tensor([0, 999]))
    assert out.shape == (2, 5, length)
    assert torch.isfinite(out).all() and out.abs().sum() > 0


def test_unet_scalar_timestep_and_timestep_matters():
    model = TemporalUNet1D(**TINY)
    _randomize_output(model)
    x = torch.randn(3, 5, 8)
    a, b = model(x, 10), model(x, torch.full((3,), 10))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(model(x, 10), model(x, 900))


def test_unet_output_is_zero_at_init():
    model = TemporalUNet1D(**TINY)
    out = model(torch.randn(2, 5, 9), torch.tensor([3, 500]))
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize("length", [5, 11, 13])
def test_unet_pads_at_the_end_by_replicating_and_crops_back(length):
    """An odd length is computed as the replicate-padded multiple-of-4 input, cropped to the first L positions.

    Fails if the padding used zeros (or reflection), went at the front, or the crop kept the wrong end.
    """
    import torch.nn.functional as F

    model = TemporalUNet1D(**TINY).eval()
    _randomize_output(model)
    assert model.length_multiple == 4
    x = torch.randn(2, 5, length)
    padded = F.pad(x, (0, (-length) % 4), mode="replicate")
    assert padded.shape[-1] != length  # the case under test really pads
    with torch.no_grad():
        torch.testing.assert_close(model(x, 5), model(padded, 5)[..., :length])
        # and the choice matters: a zero-padded input gives another result
        zero = F.pad(x, (0, (-length) % 4))
        assert not torch.allclose(model(x, 5), model(zero, 5)[..., :length], atol=1e-4)


@pytest.mark.parametrize("name", list(UNET1D_PRESETS))
def test_unet_presets_build(name):
    model = TemporalUNet1D(in_channels=20, out_channels=20, **UNET1D_PRESETS[name])
    assert model(torch.randn(1, 20, 16), 0).shape == (1, 20, 16)


def test_unet_config_errors():
    with pytest.raises(ConfigError, match="attention_levels"):
        TemporalUNet1D(block_channels=(16, 32), attention_levels=(True,), norm_groups=8)
    with pytest.raises(ConfigError, match="norm_groups"):
        TemporalUNet1D(block_channels=(12, 32), attention_levels=(False, False), norm_groups=8)


def test_start_code_mlp_shapes_and_zero_init():
    model = StartCodeMLP(motion_dim=6, hidden_dim=32, num_blocks=2, time_embed_dim=16)
    x = torch.randn(4, 6)
    assert torch.count_nonzero(model(x, torch.arange(4))) == 0
    _randomize_output(model)
    out = model(x, 7)
    assert out.shape == (4, 6) and out.abs().sum() > 0
    for name in START_CODE_PRESETS:
        assert StartCodeMLP(motion_dim=20, **START_CODE_PRESETS[name])(torch.randn(2, 20), 1).shape == (2, 20)
