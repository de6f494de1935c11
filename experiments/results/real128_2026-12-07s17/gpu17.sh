#!/usr/bin/env bash
# Session 17 kit: fine-tune session 16's 17.5-minute real-face export (export2, carried as fp16 and restored to fp32)
# in arms run one after another on the one card, each scored on the lossless held-out clips when it ends.
#   bash .c26/gpu17.sh start MIN ARM:SETS ARM:SETS ...   (SETS: comma-separated key=value for --set; '-' for none)
#   bash .c26/gpu17.sh await SECONDS ; bash .c26/gpu17.sh collect ARM
set -uo pipefail
K=/tmp/kit; R=/tmp/real; RES=/tmp/res
env_setup() { export PYTHONPATH=/tmp/site:$K/repo/src PYTHONUNBUFFERED=1 LEO_PROGRESS=0; LEO="python3 -m leo_video.cli.main"; }
case $1 in
start)
  MIN=$2; shift 2
  rm -rf $K $RES; mkdir -p $K/repo $RES; cp -r .c26 $K/; cp -r src configs experiments scripts $K/repo/ 2>/dev/null
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  env_setup; nvidia-smi --query-gpu=name,memory.used --format=csv
  rm -rf $R; python3 $K/.c26/pack.py unpack $K/.c26/data $R && cp -r $K/.c26/data/stills/* $R/train/
  ls $R/train | wc -l; ls $R/test
  mkdir -p $K/init && cp $K/.c26/init/config.json $K/init/ && python3 - <<'PY'
from safetensors.torch import load_file, save_file
sd = load_file('/tmp/kit/.c26/init/weights_fp16.safetensors')
save_file({k: v.float() for k, v in sd.items()}, '/tmp/kit/init/diffusion_pytorch_model.safetensors')
PY
  cat > $K/chain.sh <<EOF
set -u
cd $K/repo
for spec in $*; do
  arm=\${spec%%:*}; sets=\${spec#*:}; extra=()
  [ "\$sets" != "-" ] && for kv in \${sets//,/ }; do extra+=(--set "\$kv"); done
  echo "[\$(date -u +%H:%M:%S)] arm \$arm: \${extra[*]:-}"
  mkdir -p $RES/\$arm
  $LEO train lia --config configs/real_faces/lia.yaml --run-dir /tmp/run_\$arm --set data.root=$R --set data.test_root=$R \
    --set train.eval_every=2000 --set train.checkpoint_every=2000 --set train.max_minutes=$MIN \
    --set model.init_checkpoint=$K/init --set loss.i3d_weights=$K/.c26/i3d_frame.safetensors "\${extra[@]}" ${EXTRA_ALL:-} \
    > $RES/\$arm/train.log 2>&1
  $LEO export --checkpoint /tmp/run_\$arm --out /tmp/run_\$arm/export --ema --overwrite > $RES/\$arm/export.log 2>&1
  $LEO eval recon --checkpoint /tmp/run_\$arm/export --data $R --by-motion --plot $RES/\$arm/by_motion.png \
    --sheet $RES/\$arm/sheet.png --device ${EVAL_DEVICE:-cuda} > $RES/\$arm/eval.jsonl 2> $RES/\$arm/eval.err
  python3 experiments/lia_diagnosis.py animator --checkpoint /tmp/run_\$arm/export --data $R --videos 3 >> $RES/\$arm/eval.jsonl 2>> $RES/\$arm/eval.err
  cp /tmp/run_\$arm/metrics.jsonl /tmp/run_\$arm/config.yaml $RES/\$arm/ 2>/dev/null
  echo "[\$(date -u +%H:%M:%S)] arm \$arm done"; cat $RES/\$arm/eval.jsonl | cut -c1-400
done
echo ALL-DONE
EOF
  setsid nohup bash $K/chain.sh > /tmp/chain.log 2>&1 < /dev/null &
  echo $! > /tmp/chain.pid
  echo "started: $*"; sleep 60; tail -n 3 /tmp/chain.log; tail -n 3 $RES/*/train.log ;;
await)
  end=$(( $(date +%s) + $2 ))
  while kill -0 "$(cat /tmp/chain.pid)" 2> /dev/null && [ $(date +%s) -lt $end ]; do sleep 15; done
  cat /tmp/chain.log | cut -c1-600
  for f in $RES/*/metrics.jsonl; do echo "== $f"; grep -h '"eval/' $f | tail -n 4 | cut -c1-400; tail -n 1 $f | cut -c1-300; done ;;
collect)
  ARM=$2; mkdir -p $OUT
  tar czf $OUT/res_$ARM.tgz -C $RES $ARM
  [ -d /tmp/run_$ARM/export ] && tar cf - -C /tmp/run_$ARM export | gzip -1 | split -b 15M - $OUT/export_$ARM.tgz.part_
  ls -la $OUT ;;
esac
