#!/usr/bin/env bash
# Train the embedded demo LEO from nothing: synthetic humans -> LIA -> motion codes -> cLMDM, start-code
# prior and cDDPM (the three in parallel on one GPU) -> one fp16 pipeline folder -> held-out metrics.
#
#   bash scripts/train_demo.sh                 # one GPU, about 15 minutes on an H100
#   bash scripts/train_demo.sh --install       # ... then copy the pipeline into src/leo_video/assets/
#   SMOKE=1 bash scripts/train_demo.sh         # a few steps of everything on a CPU (checks the wiring)
#   LIA=runs/x/export bash scripts/train_demo.sh  # stage 1 already trained (an exported animator): skip it
#   LIA_SETS="train.max_minutes=12 train.batch_size=128" FORMAT=mp4 bash scripts/train_demo.sh
#       # settings on top of a stage's config (LIA_SETS, LMDM_SETS, PRIOR_SETS, CDDPM_SETS: space-separated
#       # key=value, as --set takes them); FORMAT=mp4 stores the synthetic data as H.264 (lossy) instead of the
#       # default PNG frame folders (lossless, as the shipped model was trained)
#
# The same recipe on a dataset of your own (a `leo-video prepare` folder with train/ and test/):
#   DATA=runs/faces128 CONFIGS=configs/real_faces RUNS=runs/faces bash scripts/train_demo.sh
#
# Configs: $CONFIGS/*.yaml (default configs/demo). Outputs under $RUNS (default runs/demo): the dataset
# (synthetic, unless DATA is given), each stage's run folder and export, pipeline/ (what ships),
# metrics.json and train_demo.log.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/demo}
LEO=${LEO:-leo-video}
VIDEOS=${VIDEOS:-400}
FORMAT=${FORMAT:-frames}
FRAMES=${FRAMES:-64}
CONFIGS=${CONFIGS:-configs/demo}
INSTALL=0
[[ "${1:-}" == "--install" ]] && INSTALL=1
export LEO_PROGRESS=${LEO_PROGRESS:-0}

MAKE_SYNTHETIC=0
[[ -z "${DATA:-}" ]] && { DATA=$RUNS/data; MAKE_SYNTHETIC=1; }
[[ -d "$DATA/train" && -d "$DATA/test" ]] || [[ $MAKE_SYNTHETIC == 1 ]] || {
  echo "train_demo.sh: DATA=$DATA needs train/ and test/ folders (leo-video prepare writes them)" >&2; exit 2; }
declare -a LIA_SET=() LMDM_SET=() PRIOR_SET=() CDDPM_SET=()
if [[ "${SMOKE:-0}" == "1" ]]; then  # tiny everything, CPU: proves that the stages fit together
  VIDEOS=10; FRAMES=24
  common=(train.max_steps=2 train.cpu=true train.num_workers=0 train.mixed_precision=no train.checkpoint_every=2
          train.dynamo_backend=no)
  sets() { for kv in "${common[@]}" "$@"; do printf '%s\n' --set "$kv"; done; }
  mapfile -t LIA_SET < <(sets train.batch_size=4 model.channel_max=16 model.style_dim=32)
  mapfile -t LMDM_SET < <(sets train.batch_size=4 model.sequence_length=8)
  mapfile -t PRIOR_SET < <(sets train.batch_size=8)
  mapfile -t CDDPM_SET < <(sets train.batch_size=4 data.stats_frames=8)
fi
# the caller's settings last: they win over the smoke settings and the configs
for stage in LIA LMDM PRIOR CDDPM; do
  declare -n target="${stage}_SET" extra="${stage}_SETS"
  for kv in ${extra:-}; do target+=(--set "$kv"); done
  unset -n target extra
done

log() { echo "[$(date -u +%H:%M:%S)] $*"; }
t0=$(date +%s)
mkdir -p "$RUNS"

if [[ $MAKE_SYNTHETIC == 1 ]]; then
  log "synthetic humans: $VIDEOS videos x $FRAMES frames at 64x64 -> $DATA"
  $LEO make-synthetic --out "$DATA" --videos "$VIDEOS" --frames "$FRAMES" --size 64 --seed 0 --format "$FORMAT" --overwrite --no-progress
else
  log "dataset $DATA: $(ls "$DATA/train" | wc -l) training and $(ls "$DATA/test" | wc -l) held-out videos"
fi

if [[ -n "${LIA:-}" ]]; then
  log "stage 1: the exported animator $LIA"
  rm -rf "$RUNS/lia-export" && cp -r "$LIA" "$RUNS/lia-export"
else
  log "stage 1: LIA"
  $LEO train lia --config "$CONFIGS/lia.yaml" --run-dir "$RUNS/lia" \
    --set data.root="$DATA/train" ${LIA_SET[@]+"${LIA_SET[@]}"}
  $LEO export --checkpoint "$RUNS/lia" --out "$RUNS/lia-export" --ema --overwrite
fi
t_lia=$(date +%s)

log "motion codes of every video (train + test)"
$LEO encode-motion --checkpoint "$RUNS/lia-export" --data "$DATA" --out "$RUNS/codes"
$LEO encode-motion --checkpoint "$RUNS/lia-export" --data "$DATA/test" --out "$RUNS/codes-test"

log "stage 2 and start models, in parallel: cLMDM, start-code prior, cDDPM"
$LEO train lmdm --config "$CONFIGS/lmdm.yaml" --codes "$RUNS/codes" --run-dir "$RUNS/lmdm" \
  ${LMDM_SET[@]+"${LMDM_SET[@]}"} > "$RUNS/lmdm.log" 2>&1 &
p1=$!
$LEO train alpha-prior --config "$CONFIGS/alpha_prior.yaml" --codes "$RUNS/codes" --run-dir "$RUNS/alpha-prior" \
  ${PRIOR_SET[@]+"${PRIOR_SET[@]}"} > "$RUNS/alpha-prior.log" 2>&1 &
p2=$!
$LEO train cddpm --config "$CONFIGS/cddpm.yaml" --data "$DATA" --animator "$RUNS/lia-export" --run-dir "$RUNS/cddpm" \
  ${CDDPM_SET[@]+"${CDDPM_SET[@]}"} > "$RUNS/cddpm.log" 2>&1 &
p3=$!
status=0
for p in $p1 $p2 $p3; do wait $p || status=1; done
tail -n 2 "$RUNS/lmdm.log" "$RUNS/alpha-prior.log" "$RUNS/cddpm.log"
[[ $status == 0 ]] || { log "a stage failed (see $RUNS/*.log)"; exit 1; }
t_stage2=$(date +%s)

log "one pipeline folder, fp16 weights"
$LEO assemble --animator "$RUNS/lia-export" --motion "$RUNS/lmdm/export" --start-code "$RUNS/alpha-prior/export" \
  --start-frame "$RUNS/cddpm/export" --sampler ddim --steps 25 --fps 15 --weights-dtype fp16 \
  --out "$RUNS/pipeline" --overwrite
du -sh "$RUNS/pipeline"

log "held-out metrics"
python3 scripts/demo_metrics.py --pipeline "$RUNS/pipeline" --data "$DATA/test" --codes "$RUNS/codes-test" \
  --lia-seconds $((t_lia - t0)) --stage2-seconds $((t_stage2 - t_lia)) --out "$RUNS/metrics.json"

if [[ $INSTALL == 1 ]]; then
  rm -rf src/leo_video/assets/demo_pipeline
  cp -r "$RUNS/pipeline" src/leo_video/assets/demo_pipeline
  log "installed into src/leo_video/assets/demo_pipeline"
fi
log "done in $(( $(date +%s) - t0 )) s"
