#!/usr/bin/env bash
# Session 10 (issue 23 real faces; issue 22 rows): three arms from the session-9 real-face export side by side
# (l1 continued, aug = strong augmentation, aug_i3d = strong augmentation + I3D perceptual), GPU tests beside them,
# then issue-22 256² rows on the quiet card.
#   bash .c24/gpu26.sh start ; bash .c24/gpu26.sh tests ; bash .c24/gpu26.sh wait SECS ; bash .c24/gpu26.sh collect ; bash .c24/gpu26.sh bench
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 LEO_PROGRESS=0 PY=python3
export LEO="python3 -m leo_video.cli.main"
R=runs/s10; mkdir -p $R
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
case $1 in
  start)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .c24/whl/*.whl \
      > /dev/null 2>&1 || { echo "wheel install failed"; exit 1; }
    nvidia-smi --query-gpu=name --format=csv,noheader | tee $R/card.txt
    python3 .c24/mp4_to_frames.py .c24/realmp4 $R/real
    date +%s > $R/t0
    ARMS="${ARMS:-l1 aug aug_i3d}" REAL=1 DATA=$R/real CONFIG=configs/real_faces/lia.yaml INIT=.c24/real_export_s9 \
      I3D_WEIGHTS=.c24/i3d_frame.safetensors STEPS=${STEPS:-7000} MINUTES=${MINUTES:-13} RUNS=$R/ab \
      setsid nohup bash experiments/perceptual_ab.sh > $R/ab.log 2>&1 < /dev/null &
    [[ ${TESTS:-0} == 1 ]] && setsid nohup timeout 600 python3 -m pytest -q -m gpu tests -p no:cacheprovider --timeout 600 -rf \
      -k "cuda_profile_and_compile or cuda_fast_paths_match_cpu_float64" > $R/gpu_tests.txt 2>&1 < /dev/null &
    log "A/B started"; sleep 20; tail -n 3 $R/ab/*.log ;;
  tests)
    timeout ${TEST_SECONDS:-480} python3 -m pytest -q -m gpu tests -p no:cacheprovider --timeout 600 -rf > $R/gpu_tests.txt 2>&1
    echo "pytest exit $?" >> $R/gpu_tests.txt; tail -n 15 $R/gpu_tests.txt ;;
  wait)
    end=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < end )) && ! grep -q "done$\|failed\|nothing was run" $R/ab.log 2>/dev/null; do sleep 10; done
    log "elapsed $(( $(date +%s) - $(cat $R/t0) )) s"; tail -n 4 $R/ab.log
    for n in l1 aug aug_i3d; do tail -n 1 $R/ab/$n/metrics.jsonl 2>/dev/null; done ;;
  collect)
    tar czf $OUT/texts.tar.gz $R/ab/out/results.jsonl $R/ab/out/logs.tar.gz $R/gpu_tests.txt $R/ab.log $R/card.txt 2>/dev/null
    for n in ${ARMS:-l1 aug aug_i3d}; do
      python3 .c24/recon_sheet.py $R/real/test $R/ab/$n/export $OUT/${n}_recon.png > /dev/null 2>&1
    done
    tar cf - -C $R/ab/aug_i3d export | split -b 15M - $OUT/export_aug_i3d.tar.part_
    ls -la $OUT; cat $R/ab/out/results.jsonl ;;
  export)
    tar cf $OUT/export_$2.tar -C $R/ab/$2 export; ls -la $OUT ;;
  bench)
    B=$R/bench; mkdir -p $B
    timeout 250 python3 benchmarks/train_throughput.py --device cuda --only lia --precisions bf16 bf16-compile-cudagraphs \
      --batch 32 --name lia256_b32_cudagraphs --out $B --warmup 3 --steps 8 2>&1 | tail -n 12
    timeout 200 python3 benchmarks/train_throughput.py --device cuda --only lia --precisions bf16 bf16-compile-cudagraphs \
      --batch 64 --name lia256_b64_cudagraphs --out $B --warmup 3 --steps 8 2>&1 | tail -n 12
    timeout 120 python3 benchmarks/train_throughput.py --device cuda --only lmdm cddpm --name stages --out $B 2>&1 | tail -n 12
    tar czf $OUT/bench.tar.gz $B ;;
esac
