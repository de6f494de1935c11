"""Two "nodes" on this machine: `torchrun --nnodes 2` (c10d rendezvous on 127.0.0.1, gloo, CPU) running
`leo-video train lia`, and resumes that change the world size (docs/TRAINING.md, "Several GPUs and nodes").

Each node is its own torchrun with one process, as on a cluster (c10d numbers the ranks in the order the
nodes join and ignores ``--node-rank``, so the checks go by rank, not node); a spy around the CLI records, per rank,
the losses the loop agreed on and the checkpoints it wrote. The GAN is off: D's minibatch-stddev groups
are formed within each process's batch (as in StyleGAN2 and LIA), the one part of a LIA step that depends
on the world size, so with it on runs of different world sizes are not comparable step by step.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_lia import _one_thread, data_root, logged, train_args  # noqa: F401 (fixtures)

from leo_video.train import checkpoint as ckpt

SPY = """
import json, os, sys
from pathlib import Path
from leo_video.cli.main import main
from leo_video.train import checkpoint as ckpt
from leo_video.train.loop import Trainer

out, hide_from, argv = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
rank = int(os.environ["RANK"])
seen = {"rank": rank, "world": int(os.environ["WORLD_SIZE"]), "losses": [], "saved": []}
agree, save, latest = Trainer._mean_over_processes, ckpt.save_checkpoint, ckpt.load_latest

def spy_agree(self, means):  # the losses every rank logs (log_every 1: one record per step)
    agreed = agree(self, means)
    seen["losses"].append(agreed)
    return agreed

def spy_save(state, path):
    seen["saved"].append(Path(path).name)
    return save(state, path)

Trainer._mean_over_processes, ckpt.save_checkpoint = spy_agree, spy_save
if rank == hide_from:  # this node cannot see the run folder's checkpoints (not a shared file system)
    ckpt.load_latest = lambda run_dir: None
code = main(argv)
(out / f"rank{rank}.json").write_text(json.dumps(seen))
sys.exit(code)
"""

# Steps of a world-size-changed run against the one-process reference: the same samples and weights, but
# the gradient is averaged over ranks by the all-reduce (float32 sums in another order, ~1e-7 relative),
# and Adam's first steps (update ~ lr * g / |g|) amplify that rounding in near-zero gradient entries.
# Measured: 4e-8 at steps 1-2, up to 5e-6 at step 4; a wrong sample, weight or optimiser state moves
# the L1 by percents.
RTOL = 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(tmp_path: Path, argv: list, hide_from: int = -1) -> tuple[list[dict], list[subprocess.CompletedProcess]]:
    """Run ``leo-video ARGV`` as two one-process torchrun nodes; returns each rank's record (by rank) and the
    two torchrun results."""
    spy = tmp_path / "spy.py"
    spy.write_text(SPY)
    out = tmp_path / "ranks"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
         "--node-rank", str(node), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--rdzv-conf", f"is_host={int(node == 0)}",  # node 0 serves the rendezvous store, as on a cluster
         "--local-addr", "127.0.0.1", str(spy), str(out), str(hide_from), *map(str, argv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for node in (0, 1)]  # fmt: skip
    results = []
    for node, proc in zip((0, 1), nodes):
        stdout, stderr = proc.communicate(timeout=240)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    records = sorted((json.loads(p.read_text()) for p in out.glob("rank*.json")), key=lambda r: r["rank"])
    return records, results


def close(got: dict[int, float], want: dict[int, float]) -> bool:
    return list(got) == list(want) and all(abs(got[s] - want[s]) <= RTOL * abs(want[s]) for s in got)


@pytest.mark.slow
def test_two_nodes_train_and_resume_on_other_world_sizes(data_root, tmp_path, run_cli):  # noqa: F811
    def args(run_dir, steps):
        return train_args(data_root, run_dir, train__max_steps=steps, loss__gan_weight=0, train__cpu="true",
                          train__num_workers=0, monitor__videos=0)  # fmt: skip

    reference = tmp_path / "one"  # one process, 4 steps straight
    assert run_cli(*args(reference, 4))[0] == 0
    want = logged(reference, "loss/l1")

    # two nodes, steps 1-2: both ranks agree on every loss; only rank 0 writes the checkpoint and the log
    two = tmp_path / "two"
    records, procs = two_nodes(tmp_path, args(two, 2))
    assert [p.returncode for p in procs] == [0, 0], procs[0].stderr[-2000:] + procs[1].stderr[-2000:]
    assert [(r["rank"], r["world"]) for r in records] == [(0, 2), (1, 2)]
    assert records[0]["losses"] == records[1]["losses"] and len(records[0]["losses"]) == 2
    assert [r["saved"] for r in records] == [["step_0000002.pt"], []]
    state = ckpt.load_checkpoint(ckpt.checkpoint_path(two, 2))
    assert state["world_size"] == 2 and state["data_position"] == 2 * 4
    assert close(logged(two, "loss/l1"), {s: want[s] for s in (1, 2)})
    assert {1: records[1]["losses"][0]["l1"], 2: records[1]["losses"][1]["l1"]} == logged(two, "loss/l1")

    # one process resumes the two-node checkpoint: steps 3-4 as in the one-process run
    shutil.copytree(two, tmp_path / "two_then_one")
    code, _, err = run_cli(*args(tmp_path / "two_then_one", 4))
    assert code == 0 and "steps 2 -> 4" in err, err
    assert close(logged(tmp_path / "two_then_one", "loss/l1"), want)

    # two nodes resume a one-process checkpoint, once a node cannot see it (refused), then for real
    one_then_two = tmp_path / "one_then_two"
    assert run_cli(*args(one_then_two, 2))[0] == 0
    _, procs = two_nodes(tmp_path, args(one_then_two, 4), hide_from=1)
    assert [p.returncode for p in procs] == [1, 1]
    refusal = "the processes found different checkpoints (rank 0: step 2, rank 1: none)"
    assert refusal in procs[0].stderr + procs[1].stderr
    assert [s for s, _ in ckpt.list_checkpoints(one_then_two)] == [2]
    records, procs = two_nodes(tmp_path, args(one_then_two, 4))
    assert [p.returncode for p in procs] == [0, 0], procs[0].stderr[-2000:] + procs[1].stderr[-2000:]
    assert records[0]["losses"] == records[1]["losses"] and [r["saved"] for r in records] == [["step_0000004.pt"], []]
    assert close(logged(one_then_two, "loss/l1"), want)
