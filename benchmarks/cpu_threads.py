"""`leo-video demo` and `leo-video generate` on the CPU under thread settings, compared in one run (issue 24).

Each setting runs the real command as a subprocess (fresh OpenMP state: the wait policy is read when
torch loads), rounds interleave the settings so that a change in the machine's load hits them alike, and
every run records the 1-minute load average before and after. ``--baseline-src`` adds the code before
issue 24 (torch's own thread defaults) for the "before" rows::

    git archive 9af0ce4 src | tar -x -C /tmp/leo-before     # the commit before issue 24's thread defaults
    python benchmarks/cpu_threads.py --baseline-src /tmp/leo-before/src --rounds 1

Settings: ``before`` (baseline code, defaults), ``before OMP_NUM_THREADS=1`` (the issue's workaround),
``auto`` (this code's defaults: OMP_WAIT_POLICY=PASSIVE, threads from the free cores), ``--threads 1``
and ``--threads N`` (all available cores, as torch's default). Outputs are compared byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def settings(baseline: Path | None, cpus: int) -> list[tuple[str, Path, dict, list]]:
    """(label, src folder, extra environment, extra arguments) per setting."""
    rows = []
    if baseline:
        rows += [("before: torch defaults", baseline, {}, []),
                 ("before: OMP_NUM_THREADS=1", baseline, {"OMP_NUM_THREADS": "1"}, [])]
    rows += [("auto (new default)", SRC, {}, []), ("--threads 1", SRC, {}, ["--threads", "1"]),
             (f"--threads {cpus}", SRC, {}, ["--threads", str(cpus)])]
    return rows


def commands(out: Path, still: Path, frames: int) -> dict[str, list[str]]:
    return {"demo": ["demo", "--out", str(out / "demo")],
            "generate": ["generate", "--source", str(still), "--frames", str(frames), "--out", str(out / "g.mp4")]}


def run_once(src: Path, env_extra: dict, argv: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env |= {"PYTHONPATH": str(src), "LEO_PROGRESS": "0", **env_extra}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "leo_video.cli.main", *argv, "--device", "cpu"], env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return {"seconds": seconds, "load_before": load_before, "load_after": os.getloadavg()[0]}


def digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", type=Path, help="src/ folder of the code before issue 24 (git archive)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds over all settings (default 1)")
    parser.add_argument("--frames", type=int, default=64, help="generate --frames (default 64)")
    parser.add_argument("--only", choices=("demo", "generate"), help="run one command only")
    parser.add_argument("--out", default=os.environ.get("OUT", "bench_out"), help="folder for cpu_threads.md/.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(SRC))
    from leo_video.data.synthetic import render_synthetic_video  # noqa: E402
    from leo_video.utils.threads import available_cpus  # noqa: E402
    from PIL import Image  # noqa: E402

    cpus = available_cpus()
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        still = Path(tmp) / "still.png"
        Image.fromarray(render_synthetic_video(9001, 1, 64, index=0)[0]).save(still)
        for round_index in range(args.rounds):
            for label, src, env, extra in settings(args.baseline_src, cpus):
                for name, command in commands(Path(tmp) / f"{round_index}-{len(results)}", still, args.frames).items():
                    if args.only and name != args.only:
                        continue
                    row = {"command": name, "setting": label, "round": round_index, **run_once(src, env, command + extra)}
                    row["output"] = digest(Path(command[command.index("--out") + 1]))
                    results.append(row)
                    print(f"{name:9} {label:28} {row['seconds']:7.1f} s  load {row['load_before']:.1f} -> "
                          f"{row['load_after']:.1f}  output {row['output']}", flush=True)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    header = f"CPU {cpu_name()}, {cpus} CPUs available, {os.cpu_count()} online; {date}"
    lines = [header, "", "| command | setting | wall s (each round) | 1-min load before each run | output |",
             "|---|---|---|---|---|"]
    for name in ("demo", "generate"):
        for label, *_ in settings(args.baseline_src, cpus):
            rows = [r for r in results if r["command"] == name and r["setting"] == label]
            if rows:
                seconds = ", ".join(f"{r['seconds']:.1f}" for r in rows)
                loads = ", ".join(f"{r['load_before']:.1f}" for r in rows)
                lines.append(f"| {name} | {label} | {seconds} | {loads} | {rows[0]['output']} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu_threads.md").write_text("\n".join(lines) + "\n")
    (out / "cpu_threads.json").write_text(json.dumps({"machine": header, "runs": results}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
