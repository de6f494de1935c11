import torch

from leo_video.models.discriminator import Discriminator, minibatch_stddev


def test_minibatch_stddev_matches_direct_computation():
    torch.manual_seed(0)
    x = torch.randn(8, 6, 4, 4, dtype=torch.float64)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 7, 4, 4)
    assert torch.equal(out[:, :6], x)
    # sample i belongs to group position i % (B // group); its std is over samples with that position
    n = 8 // 4
    for i in range(8):
        members = x[i % n :: n]  # the 4 samples of its group
        expected = torch.sqrt(members.var(dim=0, unbiased=False) + 1e-8).mean()
        assert torch.allclose(out[i, 6], expected.expand(4, 4))


def test_discriminator_shapes_and_gradients():
    torch.manual_seed(0)
    disc = Discriminator(size=32, channel_max=32)
    images = torch.randn(4, 3, 32, 32, requires_grad=True)
    logits = disc(images)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in disc.parameters())
