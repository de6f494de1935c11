#!/usr/bin/env bash
# Session 11 (issue 23 real faces): `perceptual_ab.sh REAL=1` arms from the session-10 export (.c24/real_export_s10,
# 1.10x held out), detached, polled across calls; then collect. The first call copies this driver and
# recon_sheet.py to /tmp/kit: later calls run `bash /tmp/kit/gpu27.sh ...` and need no carry (session 10 found
# .c24 gone on a call that did not carry it).
#   call 1 (carry [".c24"]):  ARMS="i3d" MINUTES=12 bash .c24/gpu27.sh start     # the target attempt, alone
#                             ARMS="i3d i3d_narrow aug" ...                        # or the factorial (card shared)
#   later calls:              bash /tmp/kit/gpu27.sh wait 540 ; bash /tmp/kit/gpu27.sh collect
#   then, if time is left:     bash /tmp/kit/gpu27.sh bench   (issue 22 rows; needs the diffusers wheel start installed)
set -uo pipefail
if [[ $1 == start ]]; then cd "$(dirname "$0")/.."; else cd "$(cat /tmp/kit/repo)"; fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 LEO_PROGRESS=0 PY=python3
export LEO="python3 -m leo_video.cli.main"
R=$PWD/runs/s11; mkdir -p $R
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
case $1 in
  start)
    mkdir -p /tmp/kit && cp .c24/gpu27.sh .c24/recon_sheet.py /tmp/kit/ && pwd > /tmp/kit/repo
    cp -r .c24/real_export_s10 .c24/i3d_frame.safetensors /tmp/kit/   # the runs read them after the call
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .c24/whl/*.whl \
      > /dev/null 2>&1 || { echo "wheel install failed"; exit 1; }
    nvidia-smi --query-gpu=name --format=csv,noheader | tee $R/card.txt
    [[ -d $R/real/test ]] || python3 .c24/mp4_to_frames.py .c24/realmp4 $R/real
    date +%s > $R/t0; echo "${ARMS:-i3d}" > $R/arms
    ARMS="${ARMS:-i3d}" REAL=1 DATA=$R/real CONFIG=configs/real_faces/lia.yaml INIT=/tmp/kit/real_export_s10 \
      I3D_WEIGHTS=/tmp/kit/i3d_frame.safetensors STEPS=${STEPS:-20000} MINUTES=${MINUTES:-12} RUNS=$R/ab \
      setsid nohup bash experiments/perceptual_ab.sh > $R/ab.log 2>&1 < /dev/null &
    log "started: $(cat $R/arms)"; sleep 20; tail -n 2 $R/ab/*.log ;;
  wait)
    end=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < end )) && ! grep -q "done$\|failed\|nothing was run\|needs\|rror" $R/ab.log 2>/dev/null; do sleep 10; done
    log "elapsed $(( $(date +%s) - $(cat $R/t0) )) s"; tail -n 4 $R/ab.log
    for n in $(cat $R/arms); do tail -n 1 $R/ab/$n/metrics.jsonl 2>/dev/null; done ;;
  collect)
    tar czf $OUT/texts.tar.gz -C $R ab/out/results.jsonl ab/out/logs.tar.gz ab.log card.txt 2>/dev/null
    for n in $(cat $R/arms); do
      python3 /tmp/kit/recon_sheet.py $R/real/test $R/ab/$n/export $OUT/${n}_recon.png > /dev/null 2>&1
    done
    best=${2:-$(head -n 1 $R/arms | cut -d' ' -f1)}
    tar cf - -C $R/ab/$best export | split -b 15M - $OUT/export_$best.tar.part_
    ls -la $OUT; cat $R/ab/out/results.jsonl ;;
  bench)  # issue 22/19 rows, after the training (the card alone); $OUT/bench.tar.gz refreshed after each part
    B=$R/bench; mkdir -p $B; pack() { tar czf $OUT/bench.tar.gz -C $R bench; }
    timeout 150 python3 benchmarks/train_throughput.py --device cuda --only lmdm cddpm --name stages --out $B 2>&1 | tail -n 14; pack
    timeout 200 python3 benchmarks/train_data_vs_random.py --device cuda --raw $R/real/train --formats jpg --workers 14 \
      --steps 40 --name train_data_vs_random_bf16 --out $B 2>&1 | tail -n 8; pack
    timeout 120 python3 benchmarks/data_loader.py --raw $R/real/train --formats jpg png --workers 0 1 4 8 14 \
      --batches 16 --out $B --name data_loader_gpuhost 2>&1 | tail -n 12; pack
    timeout 150 python3 benchmarks/encode_motion.py --device cuda --data $R/real --size 256 --batch-frames 1 64 \
      --dtypes fp32 bf16 --out $B 2>&1 | tail -n 10; pack
    timeout 220 python3 benchmarks/train_throughput.py --device cuda --only lia --precisions bf16 bf16-compile-cudagraphs \
      --batch 32 --name lia256_b32_cudagraphs --out $B --warmup 3 --steps 8 2>&1 | tail -n 8; pack ;;
esac
