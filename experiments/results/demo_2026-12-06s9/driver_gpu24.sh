#!/usr/bin/env bash
# Session 9 (issue 23): the demo retrain and the real-face animator side by side on one GPU, each trying
# CUDA graphs (train.compile_mode=reduce-overhead) against eager on its own first minutes.
#   bash .c24/gpu24.sh start       # call 1: wheels, then the jobs detached (setsid)
#   bash .c24/gpu24.sh wait SECS   # wait up to SECS for the jobs; progress; partial results into $OUT
#   bash .c24/gpu24.sh collect     # results into $OUT
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 LEO_PROGRESS=0
export LEO="python3 -m leo_video.cli.main"
R=runs/s9; mkdir -p $R
LEG_A=${LEG_A:-0.5}; LEG_B=${LEG_B:-2.5}; REAL_END=${REAL_END:-840}; DEMO_END=${DEMO_END:-750}
read -r -a EXTRA <<< "$(for kv in ${EXTRA_SETS:-}; do printf -- "--set %s " "$kv"; done)"
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
rate() {  # items/s and step of the last logged window of a metrics.jsonl
  python3 -c "import json,sys; l=[json.loads(x) for x in open(sys.argv[1]) if 'items_per_s' in x]; print(round(l[-1]['items_per_s']) if l else 0, l[-1]['step'] if l else 0)" "$1" 2>/dev/null || echo "0 0"; }
left() { python3 -c "print(max(0.3, round(($1 - $(date +%s)) / 60 - 0.3, 2)))"; }

# legs A (eager, 0.5 min) and B (CUDA graphs, 2.5 min) of one LIA run; prints the chosen mode's --set lines
probe_legs() {  # name run data config [--set ...]
  local name=$1 run=$2 data=$3 config=$4; shift 4
  local base=(train lia --config $config --run-dir $run --set data.root=$data --set train.max_steps=1000000
              --set train.log_every=100 --set train.checkpoint_every=2000 "$@" ${EXTRA[@]+"${EXTRA[@]}"})
  $LEO "${base[@]}" --set train.max_minutes=$LEG_A >> $R/$name.log 2>&1
  local eager; eager=$(rate $run/metrics.jsonl)
  local compiled="0 0"
  $LEO "${base[@]}" --set train.max_minutes=$LEG_B --set train.dynamo_backend=inductor \
    --set train.compile_mode=reduce-overhead >> $R/$name.log 2>&1 && compiled=$(rate $run/metrics.jsonl)
  echo "{\"job\": \"$name\", \"eager_items_per_s\": ${eager% *}, \"eager_step\": ${eager#* }, \"cudagraphs_items_per_s\": ${compiled% *}, \"cudagraphs_step\": ${compiled#* }}" >> $R/probe.jsonl
  if (( ${compiled% *} * 100 > ${eager% *} * 115 )); then echo "train.dynamo_backend=inductor train.compile_mode=reduce-overhead"; else echo ""; fi
}

real_job() {
  local T0=$1 run=$R/real-lia
  python3 .c24/mp4_to_frames.py .c24/realmp4 $R/real > $R/real.log 2>&1
  local sets=(--set train.batch_size=64 --set train.num_workers=8 --set data.augment.flip=true
              --set data.augment.brightness=0.1 --set data.augment.contrast=0.1 --set data.augment.saturation=0.1
              --set data.augment.hue=0.02)
  local mode; mode=$(probe_legs real $run $R/real configs/real_faces/lia.yaml "${sets[@]}")
  local extra=(); for kv in $mode; do extra+=(--set "$kv"); done
  log "real: leg C, mode '${mode:-eager}'" >> $R/real.log
  $LEO train lia --config configs/real_faces/lia.yaml --run-dir $run --set data.root=$R/real --set train.max_steps=1000000 \
    --set train.log_every=100 --set train.checkpoint_every=2000 "${sets[@]}" ${extra[@]+"${extra[@]}"} ${EXTRA[@]+"${EXTRA[@]}"} \
    --set train.max_minutes=$(left $((T0 + REAL_END))) >> $R/real.log 2>&1
  $LEO export --checkpoint $run --out $run/export --ema --overwrite >> $R/real.log 2>&1
  $LEO eval recon --checkpoint $run/export --data $R/real > $R/real_eval.jsonl 2>> $R/real.log
  python3 .c24/recon_sheet.py $R/real/test $run/export $R/real_recon.png >> $R/real.log 2>&1
  log "real done" >> $R/real.log
  [[ -n "${EXTRA_SETS:-}" ]] || timeout 200 python3 -m pytest -q -m gpu tests -p no:cacheprovider --timeout 60 > $R/gpu_tests.txt 2>&1
  echo "pytest exit $?" >> $R/gpu_tests.txt
  touch $R/real.done
}

demo_job() {
  local T0=$1 run=runs/demo/lia
  $LEO make-synthetic --out runs/demo/data --videos ${DEMO_VIDEOS:-400} --frames ${DEMO_FRAMES:-64} --size 64 --seed 0 --format frames --overwrite \
    --no-progress > $R/demo.log 2>&1
  local mode; mode=$(probe_legs demo $run runs/demo/data/train configs/demo/lia.yaml --set train.num_workers=6)
  log "demo: leg C, mode '${mode:-eager}'" >> $R/demo.log
  LIA_SETS="train.max_steps=1000000 train.log_every=100 train.num_workers=6 $mode ${EXTRA_SETS:-} train.max_minutes=$(left $((T0 + DEMO_END)))" \
    DATA=runs/demo/data FORMAT=frames bash scripts/train_demo.sh >> $R/demo.log 2>&1
  $LEO eval transfer --checkpoint runs/demo/lia-export --pairs 16 --seed 9001 --frames 32 --sheet $R/demo_transfer.png \
    --overwrite > $R/demo_transfer.jsonl 2>> $R/demo.log
  log "demo done" >> $R/demo.log
  touch $R/demo.done
}

case $1 in
  start)
    [[ -n "${EXTRA_SETS:-}" ]] || 
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .c24/whl/*.whl \
      > /dev/null 2>&1 || { echo "wheel install failed"; exit 1; }
    nvidia-smi --query-gpu=name --format=csv,noheader | tee $R/card.txt
    T0=$(date +%s); echo $T0 > $R/t0
    setsid nohup bash .c24/gpu24.sh jobs $T0 > $R/jobs.log 2>&1 < /dev/null &
    log "jobs started" ;;
  jobs)
    real_job $2 & demo_job $2 & wait ;;
  wait)
    end=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < end )) && ! [[ -f $R/real.done && -f $R/demo.done ]]; do sleep 10; done
    log "elapsed $(( $(date +%s) - $(cat $R/t0) )) s"
    echo "== real $(rate $R/real-lia/metrics.jsonl)  demo $(rate runs/demo/lia/metrics.jsonl)"
    cat $R/probe.jsonl 2>/dev/null; tail -n 3 $R/real.log $R/demo.log
    mkdir -p $OUT/m; cp $R/real-lia/metrics.jsonl $OUT/m/real_metrics.jsonl 2>/dev/null
    cp runs/demo/lia/metrics.jsonl $OUT/m/demo_metrics.jsonl 2>/dev/null; cp $R/probe.jsonl $OUT/m/ 2>/dev/null ;;
  collect)
    cat $R/probe.jsonl $R/real_eval.jsonl $R/demo_transfer.jsonl > $OUT/results.jsonl 2>/dev/null
    cp runs/demo/metrics.json $OUT/demo_metrics.json 2>/dev/null
    cp $R/real_recon.png $R/demo_transfer.png $OUT/ 2>/dev/null
    tar czf $OUT/logs.tar.gz $R/*.log $R/gpu_tests.txt $R/card.txt $R/real-lia/metrics.jsonl $R/real-lia/config.yaml \
      runs/demo/*.log runs/demo/lia/metrics.jsonl runs/demo/lia/config.yaml runs/demo/*/metrics.jsonl 2>/dev/null
    tar cf $OUT/demo_pipeline.tar -C runs/demo pipeline 2>/dev/null
    (cd $R/real-lia/export && tar cf - . | split -b 15M - $OUT/real_export.tar.part_)
    ls -la $OUT; tail -n 5 $R/gpu_tests.txt; cat $OUT/results.jsonl ;;
esac
