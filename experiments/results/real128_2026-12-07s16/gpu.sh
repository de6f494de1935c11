#!/usr/bin/env bash
# Session 16 kit: the real-face animator from scratch with configs/real_faces/lia.yaml (+ 14 stills), on one GPU.
#   bash .c26/gpu.sh start MINUTES ; bash .c26/gpu.sh await SECONDS ; bash .c26/gpu.sh collect
# The kit is copied to /tmp/kit at start (a later call's working tree may lack it). Its data: pack.py's
# .c26/data (train/ as libx264rgb CRF 12 .mkv, test/ lossless qp 0 .mkv, decoded by OpenCV there: the GPU image has no
# PyAV; stills/ = the 14 stills centre-cropped to 128² as one-png folders, put into train/ as still_<name>).
# (Fixed after the session: the running job is tracked by its pid; matching 'train lia' by name also matched a
# call whose own command line held those words, and stopped it.)
set -uo pipefail
K=/tmp/kit; R=/tmp/real; RUN=/tmp/run
env_setup() { export PYTHONPATH=/tmp/site:$K/repo/src PYTHONUNBUFFERED=1 LEO_PROGRESS=0; LEO="python3 -m leo_video.cli.main"; }
case $1 in
start)
  MIN=$2; rm -rf $K; mkdir -p $K/repo; cp -r .c26 $K/; cp -r src configs experiments scripts $K/repo/ 2>/dev/null
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  env_setup; nvidia-smi --query-gpu=name,memory.used --format=csv
  rm -rf $R; python3 $K/.c26/pack.py unpack $K/.c26/data $R && cp -r $K/.c26/data/stills/* $R/train/
  ls $R/train | wc -l; ls $R/test
  cd $K/repo
  setsid nohup $LEO train lia --config configs/real_faces/lia.yaml --run-dir $RUN --set data.root=$R --set data.test_root=$R \
    --set train.eval_every=2000 --set train.checkpoint_every=2000 --set train.max_minutes=$MIN \
    --set loss.i3d_weights=$K/.c26/i3d_frame.safetensors > /tmp/train.log 2>&1 < /dev/null &
  echo $! > /tmp/train.pid
  echo "started, $MIN minutes"; sleep 45; tail -n 5 /tmp/train.log ;;
await)
  end=$(( $(date +%s) + $2 ))
  while kill -0 "$(cat /tmp/train.pid)" 2> /dev/null && [ $(date +%s) -lt $end ]; do sleep 20; done
  grep -v '^\s*$' /tmp/train.log | tail -n 4; grep -h '"eval/' $RUN/metrics.jsonl | tail -n 3 | cut -c1-600
  python3 - <<'PY'
import json
rows = [json.loads(l) for l in open('/tmp/run/metrics.jsonl')]
last = [r for r in rows if 'loss/l1' in r or 'loss' in str(r.keys())][-1:]
print('last step', rows[-1].get('step'), {k: v for k, v in rows[-1].items() if not isinstance(v, (list, dict))})
PY
  ;;
collect)
  env_setup; cd $K/repo; mkdir -p $OUT
  kill -0 "$(cat /tmp/train.pid)" 2> /dev/null && { echo 'still training: stopped, exporting the last checkpoint'; kill -TERM "$(cat /tmp/train.pid)"; sleep 10; }
  tail -n 20 /tmp/train.log > $OUT/train_tail.log
  $LEO export --checkpoint $RUN --out $RUN/export --ema --overwrite 2>&1 | tail -2
  $LEO eval recon --checkpoint $RUN/export --data $R --by-motion --plot $OUT/by_motion.png --device cuda | tee $OUT/eval.jsonl
  python3 experiments/lia_diagnosis.py animator --checkpoint $RUN/export --data $R --videos 3 | tee -a $OUT/eval.jsonl
  cp $RUN/metrics.jsonl $RUN/config.yaml $OUT/ 2>/dev/null
  tar cf - -C $RUN export | gzip -1 | split -b 15M - $OUT/export.tgz.part_
  ls -la $OUT ;;
esac
