"""Training under faults: SIGKILL at random points, SIGTERM/SIGINT, a full disk (issue 11).

The runs are child processes of a tiny task on CPU with a fixed seed (``test_train_loop.ToyTask``,
slowed a little so that random kill times land inside steps and checkpoint writes), or the real
``leo-video train alpha-prior`` command. ``LEO_TEST_CHECKPOINT_DELAY`` holds every checkpoint write
half-way (and again before the rename), so a kill can be aimed at a torn write.

What is proved: after every kill, each ``step_*.pt`` in the run folder is a complete checkpoint; rerunning
the same command resumes, and the losses of every step (``metrics.jsonl``) and the final weights equal an
uninterrupted run's, bit for bit. A stop signal saves and exits with status 0 (even when it arrives
during a checkpoint write). A full disk during a save keeps the previous checkpoint, prints one line
naming it, and the rerun resumes from it.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from leo_video.train import checkpoint as ckpt

TESTS = Path(__file__).parent
SETTINGS = dict(max_steps=18, checkpoint_every=3, keep_last=2, log_every=1, grad_accum_steps=2)
HOLD = 0.3  # seconds each checkpoint write is held half-way (LEO_TEST_CHECKPOINT_DELAY)

CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_train_loop import ToyTask, make_config
from leo_video.train.loop import Trainer

class SlowToyTask(ToyTask):
    def train_step(self, batch, step):
        time.sleep(0.02)  # spreads a run over ~1 s of steps, so random kill times land in steps too
        return super().train_step(batch, step)

result = Trainer(SlowToyTask(), make_config(sys.argv[1], **{settings!r})).fit()
print(f"interrupted at {{result.step}}" if result.interrupted else f"finished at {{result.step}}", flush=True)
"""


def start_child(tmp_path: Path, run_dir: Path) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS), settings=SETTINGS))
    env = {**os.environ, "LEO_TEST_CHECKPOINT_DELAY": str(HOLD), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(run_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def temp_files(run_dir: Path) -> list[str]:
    folder = ckpt.checkpoint_dir(run_dir)
    return sorted(p.name for p in folder.glob(".step_*.tmp-*")) if folder.is_dir() else []


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll ``condition()`` every 5 ms; False if the child exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise TimeoutError("the child made no progress")


def logged_step(run_dir: Path) -> int:
    """The last step in ``metrics.jsonl`` (0 before the first line)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return json.loads(lines[-1])["step"] if lines else 0
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def logged_losses(run_dir: Path) -> dict[int, float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {entry["step"]: entry["loss/mse"] for entry in map(json.loads, lines)}


def assert_every_checkpoint_complete(run_dir: Path) -> list[int]:
    steps = []
    for step, path in ckpt.list_checkpoints(run_dir):
        state = ckpt.load_checkpoint(path)  # raises on a torn or partial file
        assert state["step"] == step and state["task"]["models"], path
        steps.append(step)
    return steps


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted in-process run with the same settings (no sleeps: the losses do not depend on time)."""
    from test_train_loop import fit

    run_dir = tmp_path_factory.mktemp("reference") / "run"
    fit(run_dir, **SETTINGS)
    return run_dir


def assert_same_as_reference(run_dir: Path, reference: Path) -> None:
    expected = logged_losses(reference)
    assert sorted(expected) == list(range(1, SETTINGS["max_steps"] + 1))
    assert logged_losses(run_dir) == expected  # every step's loss, bit for bit (JSON keeps float repr)
    final = ckpt.checkpoint_path(run_dir, SETTINGS["max_steps"])
    ours = ckpt.load_checkpoint(final)["task"]
    theirs = ckpt.load_checkpoint(ckpt.checkpoint_path(reference, SETTINGS["max_steps"]))["task"]
    for key, value in theirs["models"]["net"].items():
        assert torch.equal(ours["models"]["net"][key], value), key


# --------------------------------------------------------------------------------------------
# SIGKILL


def temp_step(name: str) -> int:
    return int(name.split("_")[1].split(".")[0])  # ".step_0000009.pt.tmp-abc.pt" -> 9


def kill_once(proc: subprocess.Popen, run_dir: Path, mode: str, rng: random.Random, stale: list[str]) -> str | None:
    """SIGKILL the child; returns where it was killed, or None if it finished first.

    ``"mid-write"``: during the write of a randomly chosen later checkpoint, at a random moment of it.
    ``"anywhere"``: at a random time after launch (imports, setup, resume, a step or a write).
    ``stale``: temp files left by earlier kills (the child removes them when it starts).
    """
    if mode == "mid-write":
        done = max((step for step, _ in ckpt.list_checkpoints(run_dir)), default=0)
        every, last = SETTINGS["checkpoint_every"], SETTINGS["max_steps"]
        target = rng.choice(range(done + every, last + 1, every))
        writing = lambda: any(temp_step(n) >= target for n in temp_files(run_dir) if n not in stale)  # noqa: E731
        if not wait_for(writing, proc):
            return None
        time.sleep(rng.uniform(0.0, 0.5 * HOLD))  # inside the held write, with room for polling lag
    else:
        time.sleep(rng.uniform(0.5, 3.5))
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return f"{mode}: temp files {temp_files(run_dir)}"


def test_sigkill_at_random_points_then_resume_continues_exactly(tmp_path, reference):
    """Five SIGKILLs (three aimed at checkpoint writes), each followed by a rerun of the same command."""
    seed = int(os.environ.get("LEO_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    run_dir = tmp_path / "run"
    modes = ["mid-write"] * 3 + ["anywhere"] * 2
    rng.shuffle(modes)
    kills, torn = [], 0
    for mode in modes:
        stale = temp_files(run_dir)
        proc = start_child(tmp_path, run_dir)
        where = kill_once(proc, run_dir, mode, rng, stale)
        if where is None:  # finished before the kill: nothing left to interrupt
            assert proc.returncode == 0, proc.stderr.read()[-2000:]
            break
        kills.append(where)
        torn += bool(set(temp_files(run_dir)) - set(stale))  # this child was killed mid-write
        assert_every_checkpoint_complete(run_dir)  # never a partial file under a step_*.pt name
    context = f"LEO_FAULT_SEED={seed}; kills: {kills}"
    assert torn >= 2, context  # at least two kills hit a checkpoint write in progress
    final = start_child(tmp_path, run_dir)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0 and "finished at 18" in out, f"{context}\n{err[-2000:]}"
    assert temp_files(run_dir) == [], context  # torn writes are cleaned up on resume
    assert assert_every_checkpoint_complete(run_dir) == [15, 18], context  # keep_last=2
    assert_same_as_reference(run_dir, reference)


# --------------------------------------------------------------------------------------------
# The real command: stop signals and a full disk (in-process `leo-video train alpha-prior`)

PRIOR_SETS = ["model.preset=tiny", "optim.warmup_steps=0", "train.max_steps=12", "train.batch_size=8",
              "train.checkpoint_every=3", "train.keep_last=5", "train.log_every=1", "train.cpu=true"]  # fmt: skip


@pytest.fixture(scope="module")
def codes(tmp_path_factory) -> Path:
    """A motion-code store of 10 train + 2 test videos of random codes (T = 6, M = 4)."""
    from leo_video.data.motion_codes import MotionCodeWriter

    root = tmp_path_factory.mktemp("codes") / "codes"
    g = torch.Generator().manual_seed(0)
    with MotionCodeWriter(root) as writer:
        for k in range(12):
            meta = {"source": f"missing{k}.mp4", "fps": 25.0, "split": "train" if k < 10 else "test"}
            writer.add(f"video{k:02d}", torch.randn(6, 4, generator=g), meta)
    return root


@pytest.fixture(scope="module")
def prior_reference(codes, tmp_path_factory) -> Path:
    from leo_video.cli.main import main

    run_dir = tmp_path_factory.mktemp("prior_reference") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(train_prior_argv(codes, run_dir)) == 0
    finally:
        torch.set_num_threads(threads)
    return run_dir


def train_prior_argv(codes: Path, run_dir: Path) -> list[str]:
    return ["train", "alpha-prior", "--codes", str(codes), "--run-dir", str(run_dir),
            *[a for s in PRIOR_SETS for a in ("--set", s)]]  # fmt: skip


def signal_when(condition, signum: int, delay: float = 0.0) -> threading.Thread:
    """Send ``signum`` to this process from a watcher thread once ``condition()`` holds (Python runs the
    handler in the main thread, as for a signal from outside)."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not condition():
            if time.monotonic() > deadline:
                return  # never signal a process that is no longer training
            time.sleep(0.002)
        time.sleep(delay)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def prior_losses(run_dir: Path) -> dict[int, float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {entry["step"]: entry["loss/mse"] for entry in map(json.loads, lines)}


@pytest.fixture
def late_signals_ignored():
    """SIGTERM/SIGINT arriving outside a training run do nothing (instead of ending pytest)."""
    previous = {signum: signal.signal(signum, lambda *_: None) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.usefixtures("one_thread", "late_signals_ignored")
def test_sigterm_during_a_save_and_sigint_mid_step_stop_cleanly_and_resume_exactly(
    codes, prior_reference, tmp_path, run_cli, monkeypatch
):
    run_dir = tmp_path / "run"
    argv = train_prior_argv(codes, run_dir)
    monkeypatch.setenv("LEO_TEST_CHECKPOINT_DELAY", "0.2")
    # SIGTERM while step 6's checkpoint is half written: the write completes, one more step, a save, exit 0
    watcher = signal_when(lambda: any(temp_step(n) == 6 for n in temp_files(run_dir)), signal.SIGTERM, 0.05)
    code, out, err = run_cli(*argv)
    watcher.join()
    assert code == 0, err
    assert f"stopped at step 7; checkpoint {ckpt.checkpoint_path(run_dir, 7)}; rerun the same command" in out
    assert assert_every_checkpoint_complete(run_dir) == [3, 6, 7] and temp_files(run_dir) == []
    assert not (run_dir / "export").exists()
    # SIGINT (Ctrl-C) in the middle of the steps after the resume
    watcher = signal_when(lambda: logged_step(run_dir) >= 9, signal.SIGINT)
    code, out, err = run_cli(*argv)
    watcher.join()
    assert code == 0, err
    stopped = ckpt.list_checkpoints(run_dir)[-1][0]
    assert 9 <= stopped < 12 and f"stopped at step {stopped};" in out
    assert assert_every_checkpoint_complete(run_dir)[-1] == stopped and temp_files(run_dir) == []
    # the rerun finishes, with every step's loss equal to the uninterrupted run's
    monkeypatch.delenv("LEO_TEST_CHECKPOINT_DELAY")
    code, out, err = run_cli(*argv)
    assert code == 0 and "trained 12 steps" in out, err
    assert prior_losses(run_dir) == prior_losses(prior_reference)
    assert (run_dir / "export" / "config.json").is_file()


@pytest.mark.usefixtures("one_thread")
def test_the_train_command_killed_mid_save_resumes_exactly(codes, prior_reference, tmp_path, run_cli):
    """The real `leo-video train alpha-prior` in a child process, SIGKILLed while step 6's checkpoint is
    half written; the same command rerun continues from step 3 to the uninterrupted run's losses."""
    run_dir = tmp_path / "run"
    argv = train_prior_argv(codes, run_dir)
    env = {**os.environ, "LEO_TEST_CHECKPOINT_DELAY": str(HOLD), "OMP_NUM_THREADS": "1", "LEO_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "leo_video", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert wait_for(lambda: any(temp_step(n) == 6 for n in temp_files(run_dir)), proc), proc.communicate()[1][-2000:]
    time.sleep(HOLD / 4)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert assert_every_checkpoint_complete(run_dir) == [3] and [temp_step(n) for n in temp_files(run_dir)] == [6]
    code, out, err = run_cli(*argv)
    assert code == 0 and "trained 12 steps" in out, err
    assert temp_files(run_dir) == [] and prior_losses(run_dir) == prior_losses(prior_reference)


class FullDiskFile:
    """A binary file whose disk fills up after ``room`` bytes: later writes raise ENOSPC."""

    def __init__(self, path, room: int) -> None:
        self.handle, self.room = open(path, "wb"), room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.handle.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()

    def __enter__(self) -> "FullDiskFile":
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


@pytest.mark.usefixtures("one_thread")
def test_full_disk_during_a_save_keeps_the_previous_checkpoint_and_says_so(
    codes, prior_reference, tmp_path, run_cli, monkeypatch
):
    run_dir = tmp_path / "run"
    argv = train_prior_argv(codes, run_dir)
    real_open = open

    def open_on_a_filling_disk(path, mode="r", *args, **kwargs):  # the disk fills during step 6's save
        if ".step_0000006.pt.tmp-" in os.fspath(path) and "w" in mode:
            return FullDiskFile(path, room=300)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(ckpt, "open", open_on_a_filling_disk, raising=False)  # the builtin, in that module only
    code, out, err = run_cli(*argv)
    lines = err.strip().splitlines()  # the training progress bar, then the error
    assert code == 2 and "Traceback" not in err and sum("error" in line for line in lines) == 1, err
    new, previous = ckpt.checkpoint_path(run_dir, 6), ckpt.checkpoint_path(run_dir, 3)
    assert lines[-1] == (f"leo-video train alpha-prior: error: {new}: no space left on device while saving; "
                         f"the previous checkpoint {previous} is intact")
    assert assert_every_checkpoint_complete(run_dir) == [3] and temp_files(run_dir) == []
    assert not (run_dir / "export").exists()
    # space freed: the same command resumes from step 3 and ends as the uninterrupted run did
    monkeypatch.undo()
    code, out, err = run_cli(*argv)
    assert code == 0 and "trained 12 steps" in out, err
    assert prior_losses(run_dir) == prior_losses(prior_reference)


# --------------------------------------------------------------------------------------------
# Numerical faults in training


@pytest.mark.usefixtures("one_thread")
def test_nan_loss_stops_the_command_with_one_line_and_keeps_the_last_good_checkpoint(
    codes, prior_reference, tmp_path, run_cli, monkeypatch
):
    from leo_video.train.alpha_prior import AlphaPriorTask

    real_step = AlphaPriorTask.train_step

    def nan_at_step_4(self, batch, step):  # the 5th optimizer step's loss is NaN (as after a blow-up)
        losses = real_step(self, batch, step)
        return {**losses, "mse": torch.tensor(float("nan"))} if step == 4 else losses

    monkeypatch.setattr(AlphaPriorTask, "train_step", nan_at_step_4)
    run_dir = tmp_path / "run"
    code, _, err = run_cli(*train_prior_argv(codes, run_dir))
    lines = err.strip().splitlines()
    assert code == 3 and "Traceback" not in err and sum("error" in line for line in lines) == 1, err
    assert "loss 'mse' is nan at step 5; stopped without saving" in lines[-1]
    assert str(ckpt.checkpoint_path(run_dir, 3)) in lines[-1]  # names the last good checkpoint
    assert assert_every_checkpoint_complete(run_dir) == [3] and not (run_dir / "export").exists()


def test_nan_in_a_code_store_is_reported_before_training(codes, tmp_path, run_cli):
    import shutil

    from safetensors.torch import load_file, save_file

    damaged = tmp_path / "codes"
    shutil.copytree(codes, damaged)
    shard = next(damaged.glob("*.safetensors"))
    tensors = load_file(shard)
    name = sorted(tensors)[2]
    tensors[name][1, 0] = float("nan")
    save_file(tensors, shard)
    code, _, err = run_cli(*train_prior_argv(damaged, tmp_path / "run"))
    assert code == 3 and f"{shard}: the codes of " in err and "contain NaN or inf" in err, err
    assert not ckpt.list_checkpoints(tmp_path / "run")


@pytest.mark.usefixtures("one_thread")
def test_full_disk_during_the_final_export_says_so_and_a_rerun_exports(codes, tmp_path, run_cli, monkeypatch):
    import safetensors.torch

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    run_dir = tmp_path / "run"
    argv = train_prior_argv(codes, run_dir)
    monkeypatch.setattr(safetensors.torch, "save_file", no_space)  # diffusers' save_pretrained writes through it
    code, _, err = run_cli(*argv)
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (f"leo-video train alpha-prior: error: {run_dir / 'export'}: no space left "
                                            "on device; nothing was written")  # fmt: skip
    assert not (run_dir / "export").exists() and not list(run_dir.glob(".export.tmp-*"))
    assert assert_every_checkpoint_complete(run_dir)[-1] == 12  # training itself was saved
    monkeypatch.undo()
    code, out, err = run_cli(*argv)  # space freed: the same command only exports
    assert code == 0 and "trained 12 steps" in out and (run_dir / "export" / "config.json").is_file(), err
