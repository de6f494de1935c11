#!/usr/bin/env bash
# Issue 23: the fixed stage-1 recipe (docs/TRAINING.md) on one GPU, measured against its baselines.
#
# Four `leo-video train lia` runs share the GPU, side by side for MINUTES each:
#   syn128  configs/lia/synthetic128.yaml on 320 synthetic humans at 128x128 (80 held out)
#   syn128-pyramid  the same with an L1 image pyramid (loss.l1_scales=[1, 0.5, 0.25, 0.125]): the variant tested
#   real128 configs/real_faces/lia.yaml on REAL (a `leo-video prepare` folder: train/ = faces + upper body,
#           test/ = the held-out face clips)
#   demo64  configs/demo/lia.yaml on the demo's own synthetic set (400 videos at 64x64, seed 0), exported for
#           scripts/train_demo.sh (LIA=... skips its stage 1)
# then every animator is scored: `eval recon` (held-out self-reenactment L1 next to the still baseline) and, on
# the synthetic ones, `eval transfer` (ground truth: person A in person B's poses, seed 9001, next to the still
# and wrong-identity baselines), with labelled contact sheets.
#
#   REAL=runs/real128 bash experiments/animator128.sh          # ~9 minutes on one H100
#   SMOKE=1 REAL=runs/real128 bash experiments/animator128.sh  # a few CPU steps of everything (wiring check)
#   SHIPPED=src/leo_video/assets/demo_pipeline/animator ...      # also score the animator shipped before
#
# Outputs in OUTDIR (default $RUNS/out): results.jsonl (one JSON line per evaluation), logs.tar.gz (each run's
# log, config and metrics.jsonl), demo_lia.tar (the demo animator's export), *.png contact sheets and
# real_recon.mp4 (a held-out face: original | reconstruction).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/animator}
OUTDIR=${OUTDIR:-$RUNS/out}
LEO=${LEO:-leo-video}
REAL=${REAL:?set REAL to a prepared folder of real clips with train/ and test/}
MINUTES=${MINUTES:-6.5}
export LEO_PROGRESS=0
declare -a EXTRA=() DEMO_EXTRA=()
VIDEOS=400; PAIRS=16; EVAL_VIDEOS=20
if [[ "${SMOKE:-0}" == "1" ]]; then
  VIDEOS=10; PAIRS=2; EVAL_VIDEOS=2; MINUTES=0.2
  EXTRA=(--set train.cpu=true --set train.num_workers=0 --set train.mixed_precision=no --set train.dynamo_backend=no
         --set train.batch_size=4
         --set model.channel_max=16 --set model.style_dim=32 --set train.log_every=2 --set train.max_steps=4)
  DEMO_EXTRA=("${EXTRA[@]}")
fi
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
mkdir -p "$RUNS" "$OUTDIR"
: > "$OUTDIR/results.jsonl"

log "data: synthetic humans at 128 and 64 (seed 0), transfer pairs (seed 9001)"
$LEO make-synthetic --out "$RUNS/syn128" --videos $VIDEOS --frames 64 --size 128 --seed 0 --overwrite --no-progress &
$LEO make-synthetic --out "$RUNS/syn64" --videos $VIDEOS --frames 64 --size 64 --seed 0 --overwrite --no-progress &
$LEO make-synthetic --out "$RUNS/pairs128" --pairs $PAIRS --frames 32 --size 128 --seed 9001 --format frames \
  --overwrite --no-progress &
wait

log "training four animators side by side, $MINUTES minutes each"
train() {  # name config data [--set ...]
  local name=$1 config=$2 data=$3; shift 3
  $LEO train lia --config "$config" --run-dir "$RUNS/$name" --set data.root="$data" \
    --set train.max_minutes="$MINUTES" "$@" > "$RUNS/$name.log" 2>&1
  $LEO export --checkpoint "$RUNS/$name" --out "$RUNS/$name/export" --ema --overwrite >> "$RUNS/$name.log" 2>&1
}
train syn128 configs/lia/synthetic128.yaml "$RUNS/syn128" ${EXTRA[@]+"${EXTRA[@]}"} & p1=$!
train syn128-pyramid configs/lia/synthetic128.yaml "$RUNS/syn128" --set "loss.l1_scales=[1.0,0.5,0.25,0.125]" \
  ${EXTRA[@]+"${EXTRA[@]}"} & p4=$!
train real128 configs/real_faces/lia.yaml "$REAL" ${EXTRA[@]+"${EXTRA[@]}"} & p2=$!
train demo64 configs/demo/lia.yaml "$RUNS/syn64" ${DEMO_EXTRA[@]+"${DEMO_EXTRA[@]}"} & p3=$!
status=0
for p in $p1 $p2 $p3 $p4; do wait $p || status=1; done
for name in syn128 syn128-pyramid real128 demo64; do tail -n 3 "$RUNS/$name.log"; done
tar czf "$OUTDIR/logs.tar.gz" "$RUNS"/*.log "$RUNS"/*/config.yaml "$RUNS"/*/metrics.jsonl
[[ $status == 0 ]] || { log "a training run failed (logs.tar.gz)"; exit 1; }
tar cf "$OUTDIR/demo_lia.tar" -C "$RUNS/demo64" export

log "held-out evaluation"
$LEO eval recon --checkpoint "$RUNS/syn128/export" --data "$RUNS/syn128" --max-videos $EVAL_VIDEOS >> "$OUTDIR/results.jsonl"
$LEO eval transfer --checkpoint "$RUNS/syn128/export" --data "$RUNS/pairs128" --sheet "$OUTDIR/syn128_transfer.png" \
  --overwrite >> "$OUTDIR/results.jsonl"
$LEO eval recon --checkpoint "$RUNS/syn128-pyramid/export" --data "$RUNS/syn128" --max-videos $EVAL_VIDEOS \
  >> "$OUTDIR/results.jsonl"
$LEO eval transfer --checkpoint "$RUNS/syn128-pyramid/export" --data "$RUNS/pairs128" >> "$OUTDIR/results.jsonl"
$LEO eval recon --checkpoint "$RUNS/real128/export" --data "$REAL" >> "$OUTDIR/results.jsonl"
$LEO eval recon --checkpoint "$RUNS/demo64/export" --data "$RUNS/syn64" --max-videos $EVAL_VIDEOS >> "$OUTDIR/results.jsonl"
$LEO eval transfer --checkpoint "$RUNS/demo64/export" --pairs $PAIRS --seed 9001 --frames 32 \
  --sheet "$OUTDIR/demo64_transfer.png" --overwrite >> "$OUTDIR/results.jsonl"

if [[ -n "${SHIPPED:-}" ]]; then  # the animator shipped before, on the same held-out data (the "before")
  $LEO eval recon --checkpoint "$SHIPPED" --data "$RUNS/syn64" --max-videos $EVAL_VIDEOS >> "$OUTDIR/results.jsonl"
  $LEO eval transfer --checkpoint "$SHIPPED" --pairs $PAIRS --seed 9001 --frames 32 >> "$OUTDIR/results.jsonl"
fi

log "held-out real faces, side by side: original | reconstruction"
first=$(find "$REAL/test" -maxdepth 1 -type f | sort | head -n 1)
$LEO reconstruct --checkpoint "$RUNS/real128/export" --video "$first" --out "$OUTDIR/real_recon.mp4" --overwrite \
  >> "$OUTDIR/results.jsonl"
python3 - "$REAL/test" "$RUNS/real128/export" "$OUTDIR/real_recon.png" <<'EOF'
import sys
from pathlib import Path

import torch

from leo_video.media.grid import save_contact_sheet
from leo_video.media.video import VideoReader
from leo_video.metrics.recon import iter_self_reenactment
from leo_video.models.loading import load_lia

folder, export, out = sys.argv[1:]
animator = load_lia(export, device="cuda" if torch.cuda.is_available() else "cpu")
rows, labels = [], []
for path in sorted(Path(folder).iterdir()):
    with VideoReader(path) as reader:
        chunks = list(iter_self_reenactment(animator, reader, 64))
    target = torch.cat([t for _, t in chunks]).cpu()
    rows += [target, torch.cat([r for r, _ in chunks]).clamp(-1, 1).cpu(), target[:1].expand_as(target)]
    labels += [f"{path.stem}: original", "reconstruction", "still baseline"]
save_contact_sheet(out, rows, num_frames=8, labels=labels)
EOF
log "done"
