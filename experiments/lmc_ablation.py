"""LMC ablation on the synthetic humans (issue 5, "Proof"; LEO_METHOD.md, "Stage 2").

Does cLMDM *with* the Linear Motion Condition generate motion-code sequences that move more like real
ones than the same U-Net trained *without* LMC (the paper's ablation), and than trivial baselines?

1. **Codes.** ``--codes-from synthetic-joints`` (default, fast): the synthetic renderer's own joint-angle
   trajectories (M = 19 angles per frame, each a tanh-squashed sum of slow sinusoids) stand in for motion
   codes, so the true motion process is known and no LIA is involved. ``--codes-from lia``: render the
   synthetic humans, train LIA briefly (``leo-video train lia``), export it and encode every video
   (``leo-video encode-motion``) — the real pipeline, with noisier codes.
2. **Models.** ``leo-video train lmdm`` twice on the same code store, same steps and seed:
   ``model.use_lmc=true`` and ``model.use_lmc=false``.
3. **Generation.** From the first code α₁ of every held-out test video, ``--samples-per-start`` sequences
   of the test videos' length (autoregressive chunks of L beyond the training length).
4. **Metrics** (``leo_video.metrics.motion``, what ``leo-video eval motion`` reports) against the real test
   sequences: Fréchet distance of code windows (absolute and relative to the window start) and
   frame-to-frame jitter. Rows: LMC, no-LMC, a static sequence (α₁ repeated), a Gaussian random walk
   from α₁ with the train split's per-dimension step std, and real train sequences (the noise floor).

Writes ``OUT/results.json``, ``OUT/results.md`` (a markdown table) and ``OUT/results.png`` (Pillow).

Example (CPU, minutes): ``python experiments/lmc_ablation.py --out runs/lmc-ablation``
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from leo_video.errors import InputError
from leo_video.utils.atomic import atomic_path, atomic_write_text

CODE_SOURCES = ("synthetic-joints", "lia")
METHODS = ("lmc", "no_lmc", "static", "random_walk", "real_train")
LABELS = {"lmc": "cLMDM with LMC", "no_lmc": "cLMDM without LMC (ablation)", "static": "static (α₁ repeated)",
          "random_walk": "Gaussian random walk", "real_train": "real train sequences (floor)"}


# --------------------------------------------------------------------------------------------------
# Configuration


@dataclasses.dataclass
class AblationConfig:
    """Everything one run of the experiment depends on (recorded in ``results.json``)."""

    out: str
    codes_from: str = "synthetic-joints"
    videos: int = 240  # synthetic videos in all (train + test)
    frames: int = 64  # frames (codes) per video
    test_fraction: float = 0.25
    seed: int = 0
    fps: float = 15.0
    sequence_length: int = 16  # L, codes per training clip
    preset: str = "tiny"  # 1D U-Net preset
    steps: int = 3000  # training steps of each cLMDM
    batch_size: int = 32
    lr: float = 1e-3
    ema_decay: float = 0.99
    beta_schedule: str = "squaredcos_cap_v2"  # the lmdm preset's noise schedule
    prediction_type: str = "epsilon"  # the paper's objective
    sampler: str = "ddim"
    sample_steps: int = 50
    samples_per_start: int = 2
    window: int = 8  # codes per Fréchet window
    lia_steps: int = 200  # LIA training steps (``--codes-from lia`` only)
    lia: str | None = None  # an existing LIA to encode with instead of training one (``--codes-from lia``)
    lia_size: int = 64
    device: str = "cpu"
    threads: int = 0  # torch CPU threads (0: torch's default)
    overwrite: bool = False


def parse_args(argv: Sequence[str] | None = None) -> AblationConfig:
    """Command-line arguments -> :class:`AblationConfig`."""
    d = AblationConfig(out="")
    p = argparse.ArgumentParser(
        prog="lmc_ablation.py", description=__doc__.split("\n\n")[0],
        epilog="example: python experiments/lmc_ablation.py --out runs/lmc-ablation --steps 3000 --threads 1",
    )  # fmt: skip
    p.add_argument("--out", required=True, help="output folder (results.json, results.md, results.png, work/)")
    p.add_argument("--codes-from", choices=CODE_SOURCES, default=d.codes_from,
                   help="synthetic-joints: the renderer's joint angles as codes (fast, the known motion "
                        "process); lia: train LIA briefly and encode the rendered videos")
    p.add_argument("--videos", type=int, default=d.videos, help=f"synthetic videos (default {d.videos})")
    p.add_argument("--frames", type=int, default=d.frames, help=f"frames per video (default {d.frames})")
    p.add_argument("--test-fraction", type=float, default=d.test_fraction, help="held-out share of the videos")
    p.add_argument("--seed", type=int, default=d.seed, help="dataset, training and sampling seed")
    p.add_argument("--sequence-length", type=int, default=d.sequence_length, help="L, codes per training clip")
    p.add_argument("--preset", choices=("tiny", "small", "base"), default=d.preset, help="1D U-Net preset")
    p.add_argument("--steps", type=int, default=d.steps, help=f"training steps per cLMDM (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--ema-decay", type=float, default=d.ema_decay)
    p.add_argument("--beta-schedule", choices=("squaredcos_cap_v2", "linear", "scaled_linear"),
                   default=d.beta_schedule, help="cLMDM training noise schedule (default: the preset's cosine)")
    p.add_argument("--prediction-type", choices=("epsilon", "v_prediction", "sample"), default=d.prediction_type,
                   help="what the cLMDM U-Net predicts (default epsilon, the paper's)")
    p.add_argument("--sampler", default=d.sampler, help="ddpm, ddim or dpm++ (default ddim)")
    p.add_argument("--sample-steps", type=int, default=d.sample_steps)
    p.add_argument("--samples-per-start", type=int, default=d.samples_per_start,
                   help="generated sequences per held-out start code")
    p.add_argument("--window", type=int, default=d.window, help="codes per Fréchet window (stride window // 2)")
    p.add_argument("--lia-steps", type=int, default=d.lia_steps, help="LIA training steps (--codes-from lia)")
    p.add_argument("--lia", default=d.lia, metavar="CHECKPOINT",
                   help="--codes-from lia: encode with this trained LIA (a checkpoint or exported folder, e.g. "
                        "the demo model's src/leo_video/assets/demo_pipeline/animator) instead of training one")
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch CPU threads (default 0: torch's choice; 1 is faster on a busy machine)")
    p.add_argument("--overwrite", action="store_true", help="replace the results of an earlier run in --out")
    args = p.parse_args(argv)
    config = AblationConfig(**{k.replace("-", "_"): v for k, v in vars(args).items()})
    if config.frames < max(config.sequence_length, config.window) or config.videos < 4:
        raise InputError(f"--frames/--videos: need frames >= L and window, and >= 4 videos (got {config.frames}/{config.videos})")
    return config


# --------------------------------------------------------------------------------------------------
# Step 1: a motion-code store with train/test splits


def joint_trajectories(seed: int, index: int, frames: int, fps: float) -> np.ndarray:
    """The known motion of synthetic video ``index``: its joint angles ``(T, J)`` float32, J = 19."""
    from leo_video.data.synthetic import SyntheticHumanConfig, sample_person
    from leo_video.data.synthetic_render import joint_angles

    config = SyntheticHumanConfig(frames=frames, fps=fps)
    person = sample_person(np.random.default_rng([seed, index]), config)  # the draw render_synthetic_video makes
    angles = joint_angles(person.motion, np.arange(frames) / fps, config.motion_speed, config.sway)
    return np.stack(list(angles.values()), axis=1).astype(np.float32)  # (T, J)


def joint_code_store(c: AblationConfig, root: Path) -> Path:
    """Write the joint trajectories of every video into a motion-code store (last videos = test split)."""
    from leo_video.data.motion_codes import MotionCodeWriter
    from leo_video.data.synthetic import split_counts

    num_train, _ = split_counts(c.videos, c.test_fraction)
    with MotionCodeWriter(root) as writer:
        for k in range(c.videos):
            codes = torch.from_numpy(joint_trajectories(c.seed, k, c.frames, c.fps))
            writer.add(f"synth_{k:05d}", codes, {"source": "synthetic-joints", "fps": c.fps,
                                                 "split": "train" if k < num_train else "test"})
    return root


def lia_code_store(c: AblationConfig, work: Path) -> Path:
    """Render the synthetic humans, train LIA for ``lia_steps`` (or take ``c.lia``), encode every video."""
    data, run = work / "synthetic", work / "lia"
    size = c.lia_size
    if c.lia:
        from leo_video.models.loading import load_lia

        size = load_lia(c.lia).config.size  # render at the size the given animator works at
    cli("make-synthetic", "--out", data, "--videos", c.videos, "--frames", c.frames, "--size", size,
        "--seed", c.seed, "--fps", c.fps, "--test-fraction", c.test_fraction, "--overwrite", "--no-progress")
    if c.lia:
        lia = Path(c.lia)
    else:
        cli("train", "lia", "--config", "synthetic64", "--run-dir", run, *sets(
            f"data.root={data}", f"model.size={size}", f"train.max_steps={c.lia_steps}", f"train.seed={c.seed}",
            f"train.checkpoint_every={c.lia_steps}", "train.image_every=0", f"train.cpu={c.device == 'cpu'}"))
        cli("export", "--checkpoint", run, "--out", run / "export", "--overwrite")
        lia = run / "export"
    cli("encode-motion", "--checkpoint", lia, "--data", data, "--out", work / "codes", "--device", c.device)
    return work / "codes"


def cli(*argv: object) -> None:
    """Run one ``leo-video`` command in-process; a non-zero exit is an error."""
    from leo_video.cli.main import main

    argv = [str(a) for a in argv]
    code = main(argv)
    if code != 0:
        raise RuntimeError(f"leo-video {' '.join(argv[:2])} failed with exit code {code}")


def sets(*overrides: str) -> list[str]:
    """``("a=1", "b=2") -> ["--set", "a=1", "--set", "b=2"]``."""
    return [a for s in overrides for a in ("--set", s)]


# --------------------------------------------------------------------------------------------------
# Step 2: train cLMDM with and without LMC


def train_lmdm(c: AblationConfig, codes: Path, run_dir: Path, use_lmc: bool) -> tuple[Path, float]:
    """``leo-video train lmdm`` on ``codes``; returns (export folder, seconds)."""
    start = time.perf_counter()
    cli("train", "lmdm", "--codes", codes, "--config", "synthetic64", "--run-dir", run_dir, *sets(
        f"model.preset={c.preset}", f"model.sequence_length={c.sequence_length}", f"model.use_lmc={use_lmc}",
        f"model.beta_schedule={c.beta_schedule}", f"model.prediction_type={c.prediction_type}", f"optim.lr={c.lr}", "optim.warmup_steps=50",
        f"train.max_steps={c.steps}", f"train.batch_size={c.batch_size}",
        f"train.seed={c.seed}", f"train.checkpoint_every={c.steps}", "train.image_every=0",
        f"train.log_every={max(c.steps // 20, 1)}", f"train.ema_decay={c.ema_decay}", f"train.cpu={c.device == 'cpu'}",
        "train.num_workers=0", "data.test_fraction=0.0"))  # fmt: skip
    return run_dir / "export", time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# Step 3: sequences to compare


def load_split(codes: Path) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(train, test) code sequences, each ``(T, M)`` float32."""
    from leo_video.data.motion_codes import MotionCodeStore, select_split

    store = MotionCodeStore(codes)
    train, test = (list(dict(store.items(select_split(store, s, 0.0))).values()) for s in ("train", "test"))
    if not train or not test:
        raise InputError(f"{codes}: need train and test videos (got {len(train)} / {len(test)})")
    return [t.float() for t in train], [t.float() for t in test]


def start_codes(test: list[torch.Tensor], k: int) -> torch.Tensor:
    """α₁ of every test video, each repeated ``k`` times: (N·k, M)."""
    return torch.stack([seq[0] for seq in test]).repeat_interleave(k, dim=0)


def generate(c: AblationConfig, export: Path, alpha1: torch.Tensor, length: int) -> torch.Tensor:
    """Sequences ``(N, length, M)`` from a trained cLMDM, starting at ``alpha1 (N, M)`` (same seed for every model)."""
    from leo_video.diffusion.motion import MotionDiffusion

    model = MotionDiffusion.from_pretrained(export).to(c.device).eval()
    generator = torch.Generator(c.device).manual_seed(c.seed)
    codes = model.generate_long(alpha1, length, sampler=c.sampler, steps=c.sample_steps, generator=generator)
    return codes.float().cpu()


def static_baseline(alpha1: torch.Tensor, length: int) -> torch.Tensor:
    """α₁ repeated: (N, M) -> (N, length, M)."""
    return alpha1[:, None].expand(-1, length, -1).clone()


def random_walk_baseline(alpha1: torch.Tensor, length: int, train: list[torch.Tensor], seed: int) -> torch.Tensor:
    """α_{i+1} = α_i + N(0, diag σ²), σ the per-dimension std of the train split's one-frame steps: (N, length, M)."""
    step_std = torch.cat([seq.diff(dim=0) for seq in train]).std(dim=0)  # (M,)
    g = torch.Generator().manual_seed(seed)
    steps = torch.randn(alpha1.shape[0], length - 1, alpha1.shape[1], generator=g) * step_std  # (N, length-1, M)
    return torch.cat([alpha1[:, None], alpha1[:, None] + steps.cumsum(dim=1)], dim=1)


# --------------------------------------------------------------------------------------------------
# Step 4: metrics, table, plot


def evaluate(real: list[torch.Tensor], fake: torch.Tensor | list[torch.Tensor], window: int) -> dict:
    """Absolute and relative window Fréchet distances and jitter of ``fake`` against ``real`` sequences."""
    from leo_video.metrics.motion import code_window_frechet, motion_report

    report = motion_report(real, list(fake), window=window)
    report["code_window_fd_relative"] = code_window_frechet(real, list(fake), window=window, relative=True)
    return report


def markdown_table(results: dict[str, dict]) -> str:
    """One row per method: FD (absolute, relative), jitter, jitter ratio."""
    lines = ["| method | window FD ↓ | relative window FD ↓ | jitter (real) | jitter ratio (1 = real) |",
             "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {LABELS[name]} | {r['code_window_fd']:.4g} | {r['code_window_fd_relative']:.4g} | "
                     f"{r['jitter_fake']:.4g} ({r['jitter_real']:.4g}) | {r['jitter_ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict], trajectories: dict[str, np.ndarray], path: Path) -> None:
    """Three panels (Pillow): window FD, jitter ratio (log scale bars), one code dimension over time."""
    from PIL import Image, ImageDraw

    colours = {"real": (0, 0, 0), "lmc": (31, 119, 180), "no_lmc": (255, 127, 14), "static": (44, 160, 44),
               "random_walk": (214, 39, 40), "real_train": (127, 127, 127)}
    W, H, pad = 420, 300, 40
    img = Image.new("RGB", (3 * W, H), "white")
    draw = ImageDraw.Draw(img)
    panels = [("relative window FD (log)", {k: r["code_window_fd_relative"] for k, r in results.items()}),
              ("jitter ratio (log, 1 = real)", {k: r["jitter_ratio"] for k, r in results.items()})]
    for p, (title, values) in enumerate(panels):
        x0 = p * W
        draw.text((x0 + pad, 8), title, fill="black")
        logs = {k: np.log10(max(v, 1e-6)) for k, v in values.items()}
        lo, hi = min(min(logs.values()), 0.0) - 0.2, max(max(logs.values()), 0.0) + 0.2
        y_of = lambda v: H - pad - (v - lo) / (hi - lo) * (H - 2 * pad)  # noqa: E731
        draw.line([(x0 + pad, y_of(0.0)), (x0 + W - 10, y_of(0.0))], fill=(180, 180, 180))  # 10^0 = 1
        bw = (W - pad - 10) // len(values)
        for i, (k, v) in enumerate(logs.items()):
            bx = x0 + pad + i * bw
            draw.rectangle([bx + 4, min(y_of(v), y_of(lo)), bx + bw - 4, max(y_of(v), y_of(lo))], fill=colours[k])
            draw.text((bx + 4, H - pad + 4), k[:8], fill="black")
            draw.text((bx + 4, y_of(v) - 12), f"{values[k]:.3g}", fill="black")
    x0 = 2 * W
    draw.text((x0 + pad, 8), "test video 0, code dim of largest variance", fill="black")
    stacked = np.concatenate(list(trajectories.values()))
    lo, hi = float(stacked.min()), float(stacked.max()) + 1e-9
    T = max(len(t) for t in trajectories.values())
    for k, traj in trajectories.items():
        pts = [(x0 + pad + i / max(T - 1, 1) * (W - pad - 10), H - pad - (v - lo) / (hi - lo) * (H - 2 * pad))
               for i, v in enumerate(traj)]
        draw.line(pts, fill=colours[k], width=2)
    for i, k in enumerate(trajectories):
        draw.text((x0 + pad + 70 * i, H - pad + 10), k[:8], fill=colours[k])
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


# --------------------------------------------------------------------------------------------------
# The experiment


def run_experiment(c: AblationConfig) -> dict:
    """Steps 1-4; returns the results dict written to ``results.json``."""
    out, work = Path(c.out), Path(c.out) / "work"
    if (out / "results.json").exists() and not c.overwrite:
        raise InputError(f"{out}: holds results of an earlier run; pass --overwrite to replace them")
    shutil.rmtree(work, ignore_errors=True)  # our own scratch folder: stores and runs are never resumed
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if c.codes_from == "synthetic-joints":
        codes = joint_code_store(c, work / "codes")
    else:
        codes = lia_code_store(c, work)
    t_codes = time.perf_counter() - t0
    train, test = load_split(codes)
    T = min(seq.shape[0] for seq in test)
    real = [seq[:T] for seq in test]
    alpha1 = start_codes(real, c.samples_per_start)  # (N, M)

    exports, seconds = {}, {"codes": t_codes}
    for name, use_lmc in (("lmc", True), ("no_lmc", False)):
        exports[name], seconds[f"train_{name}"] = train_lmdm(c, codes, work / f"lmdm-{name}", use_lmc)
    fakes = {}
    for name, export in exports.items():
        t1 = time.perf_counter()
        fakes[name] = generate(c, export, alpha1, T)
        seconds[f"sample_{name}"] = time.perf_counter() - t1
    fakes["static"] = static_baseline(alpha1, T)
    fakes["random_walk"] = random_walk_baseline(alpha1, T, train, c.seed)
    fakes["real_train"] = [seq[:T] for seq in train]

    results = {name: evaluate(real, fake, c.window) for name, fake in fakes.items()}
    dim = int(torch.cat(real).var(dim=0).argmax())
    trajectories = {"real": real[0][:, dim].numpy(),
                    **{k: np.asarray(fakes[k][0])[:, dim] for k in ("lmc", "no_lmc", "static", "random_walk")}}
    summary = {
        "config": dataclasses.asdict(c), "results": results, "seconds": seconds,
        "total_seconds": time.perf_counter() - t0, "num_train_videos": len(train), "num_test_videos": len(test),
        "motion_dim": int(real[0].shape[1]), "sequence_frames": T,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": _cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "command": " ".join(["python", "experiments/lmc_ablation.py", *sys.argv[1:]]),
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "results.md", markdown_table(results))
    plot(results, trajectories, out / "results.png")
    return summary


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run, print the table; returns the exit code."""
    config = parse_args(argv)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    summary = run_experiment(config)
    print(markdown_table(summary["results"]), end="")
    print(f"wrote {Path(config.out) / 'results.json'}, results.md, results.png in {summary['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    from leo_video.errors import LeoError

    try:
        sys.exit(main())
    except LeoError as exc:  # a user error (bad option, missing checkpoint): one line, no traceback
        print(f"lmc_ablation.py: {exc}", file=sys.stderr)
        sys.exit(2)
