"""Held-out numbers of a (demo) LEO pipeline, for benchmarks/RESULTS.md: run by scripts/train_demo.sh.

* recon_l1: LIA self-reenactment L1 (on [0, 1]) over the held-out videos of --data (frame 1 animated
  with every frame's motion, compared with that frame), and recon_still_l1, frame 1 repeated;
* transfer: ground-truth motion transfer on 16 synthetic pairs (seed 9001; ``leo-video eval transfer``) with
  its still and wrong-identity baselines;
* motion: cLMDM samples started from each held-out video's first code, as long as that video, against
  the held-out codes (``leo-video eval motion``'s report: window Fréchet distance, jitter ratio), with
  two references: the real codes shuffled in time (no motion structure) and a still (alpha_1 repeated);
* prior_fd: Fréchet distance between start codes from the prior and the held-out codes.

    python3 scripts/demo_metrics.py --pipeline runs/demo/pipeline --data runs/demo/data/test \
        --codes runs/demo/codes-test --out runs/demo/metrics.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from leo_video.data.motion_codes import MotionCodeStore
from leo_video.media.video import VideoReader
from leo_video.metrics.evaluate import list_videos
from leo_video.metrics.frechet import frechet_distance
from leo_video.metrics.motion import motion_report
from leo_video.data.synthetic import render_transfer_pair
from leo_video.metrics.recon import self_reenactment_errors
from leo_video.metrics.transfer import transfer_errors
from leo_video.pipelines.leo import LEOPipeline
from leo_video.utils.device import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--data", required=True, help="held-out videos")
    parser.add_argument("--codes", required=True, help="code store of the held-out videos")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--lia-seconds", type=float, default=None)
    parser.add_argument("--stage2-seconds", type=float, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    pipe = LEOPipeline.from_pretrained(args.pipeline, device=device)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()

    errors = [self_reenactment_errors(pipe.animator, VideoReader(path)) for path in list_videos(args.data)]
    frames = sum(e["frames"] for e in errors)
    recon_l1, still_l1 = (sum(e[key] * e["frames"] for e in errors) / frames for key in ("l1", "still_l1"))
    pairs = [render_transfer_pair(9001, i, 32, pipe.animator.config.size) for i in range(16)]
    transfer = transfer_errors(pipe.animator, pairs).to_dict()

    store = MotionCodeStore(args.codes)
    real = [store.codes(name).float() for name in store.names]  # each (T, M)
    alpha1 = torch.stack([codes[0] for codes in real]).to(device)  # (N, M)
    length = min(len(codes) for codes in real)
    fake = pipe.motion.generate_long(alpha1, length, sampler="ddim", steps=args.steps, generator=generator).cpu()
    rng = np.random.default_rng(0)
    shuffled = [codes[torch.from_numpy(rng.permutation(len(codes)))] for codes in real]
    still = [codes[:1].expand(len(codes), -1) for codes in real]
    prior = pipe.start_code.sample(len(real) * 8, "ddim", args.steps, generator).cpu() if pipe.start_code else None

    report = {
        "pipeline": str(args.pipeline),
        "parameters": {name: sum(p.numel() for p in m.parameters()) for name, m in pipe.parts().items()},
        "held_out_videos": len(real),
        "recon_l1": recon_l1,
        "recon_still_l1": still_l1,
        "transfer": {k: v for k, v in transfer.items() if k != "per_pair"},  # 16 pairs of seed 9001, 32 frames
        "motion": motion_report(real, list(fake)),
        "motion_shuffled_reference": motion_report(real, shuffled),
        "motion_still_reference": {"code_window_fd": motion_report(real, still)["code_window_fd"]},
        "prior_fd": frechet_distance(torch.cat(real).numpy(), prior.numpy()) if prior is not None else None,
        "training_seconds": {"lia": args.lia_seconds, "stage2_parallel": args.stage2_seconds},
        "eval_seconds": time.perf_counter() - started,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
