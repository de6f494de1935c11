#!/usr/bin/env bash
# Issue 23's real-face runs on a lent GPU machine (/work/.library/device) whose image has PyTorch and OpenCV but
# not PyAV or diffusers, and which keeps nothing between sessions. Arms given together train AT THE SAME TIME on
# the one card, each its own process, and share its throughput (two 128² arms: ~670 images/s each in session 13,
# against 1,050-1,440 for one alone: benchmarks/RESULTS.md); one arm trains alone. Each arm: `train lia` with configs/real_faces/lia.yaml and its --set overrides, the EMA export,
# `eval recon --by-motion --sheet` on the lossless held-out clips, `lia_diagnosis.py animator`, and `levels` on
# every training and held-out clip (the drawing floor: frame 0 from its own code, on faces it trained on and not).
#
# Here (PyAV, the dev venv):
#   bash experiments/device_kit.sh build [INIT_EXPORT]   # -> .kit/ and .whl/ (ignored; ~30 MB with an init)
#     .kit/data: the real_faces.sh data packed by pack_frames.py (training clips CRF 12, stills and held-out
#     clips lossless); .kit/i3d_frame.safetensors; .kit/init: INIT_EXPORT's weights in fp16 (arms start from it);
#     .whl/: diffusers and the two packages it needs that the device image lacks.
# There (run's carry [".kit", ".whl"], the calls chained: a machine idle for 30 s is taken back):
#   bash experiments/device_kit.sh start MINUTES ARM:KEY=VALUE,KEY=VALUE ARM:- ...   # '-': the recipe as it is
#   bash experiments/device_kit.sh await SECONDS     # until every arm is done or SECONDS pass; prints progress
#   bash experiments/device_kit.sh stop              # the arms save now, then export and score as usual
#   bash experiments/device_kit.sh resume MINUTES ARM [KEY=VALUE,...]  # that arm alone from its checkpoint, with
#     more settings ('@STEP': its step; '@STEP+N'); the first leg's scores stay as ARM_leg1
#   bash experiments/device_kit.sh collect ARM ...   # $OUT/res_ARM.tgz (logs, metrics, scores, sheets), exports
# Example: start 13 W:model.channel_max=256 G:loss.gan_weight=1 C:loss.change_weight=4
set -uo pipefail
K=/tmp/kit; R=/tmp/real; RES=/tmp/res; PIDS=/tmp/kit_arms.pid
case ${1:-} in
build)
  set -e
  PY=${PY:-.venv/bin/python}; DATA=${DATA:-runs/real128}
  rm -rf .kit && mkdir -p .kit/data .whl
  DATA_ONLY=1 DATA=$DATA LEO=${LEO:-.venv/bin/leo-video} bash experiments/real_faces.sh
  $PY experiments/pack_frames.py pack "$DATA" .kit/data --split train --crf 12
  $PY experiments/pack_frames.py pack "$DATA" .kit/data --split test --crf 0
  $PY experiments/pack_frames.py check "$DATA" .kit/data --split test
  $PY scripts/export_i3d_frame_weights.py .kit/i3d_frame.safetensors
  if [[ -n "${2:-}" ]]; then
    mkdir -p .kit/init && cp "$2/config.json" .kit/init/
    $PY -c "import sys; from safetensors.torch import load_file, save_file
sd = load_file(sys.argv[1]); save_file({k: v.half() for k, v in sd.items()}, sys.argv[2])" \
      "$2/diffusion_pytorch_model.safetensors" .kit/init/weights_fp16.safetensors
  fi
  version() { $PY -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
  $PY -m pip download -q --no-deps -d .whl "diffusers==$(version diffusers)" \
    "importlib_metadata==$(version importlib_metadata)" "zipp==$(version zipp)"
  du -sh .kit .whl ;;
start)
  MIN=$2; shift 2
  rm -rf $K $RES $PIDS; mkdir -p $K/repo $RES
  cp -r .kit/. $K/; cp -r src configs experiments scripts $K/repo/  # a later call's working tree replaces ours
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
  rm -rf $R && python3 $K/repo/experiments/pack_frames.py unpack $K/data $R || exit 1
  INIT=()
  if [[ -d $K/init ]]; then  # the fp16 weights back to fp32, as `export` wrote them
    python3 -c "from safetensors.torch import load_file, save_file
save_file({k: v.float() for k, v in load_file('$K/init/weights_fp16.safetensors').items()}, '$K/init/diffusion_pytorch_model.safetensors')"
    INIT=(--set model.init_checkpoint=$K/init)
  fi
  LEO="python3 -m leo_video.cli.main"
  for spec in "$@"; do
    arm=${spec%%:*}; sets=${spec#*:}; extra=""
    [[ "$sets" != "-" ]] && for kv in ${sets//,/ }; do extra+=" --set $kv"; done
    mkdir -p $RES/$arm
    cat > $K/arm_$arm.sh <<EOF
export PYTHONPATH=/tmp/site:$K/repo/src PYTHONUNBUFFERED=1 LEO_PROGRESS=0
cd $K/repo; run=/tmp/run_$arm; res=$RES/$arm
echo "[\$(date -u +%T)] arm $arm:$extra"
$LEO train lia --config configs/real_faces/lia.yaml --run-dir \$run --set data.root=$R --set data.test_root=$R \\
  --set train.eval_every=1000 --set train.checkpoint_every=2000 --set train.max_minutes=$MIN \\
  --set train.num_workers=$(( 15 / $# > 8 ? 8 : 15 / $# )) --set loss.i3d_weights=$K/i3d_frame.safetensors \\
  ${INIT[*]:-}$extra > \$res/train.log 2>&1
echo "[\$(date -u +%T)] arm $arm trained (exit \$?)"
$LEO export --checkpoint \$run --out \$run/export --ema --overwrite > \$res/export.log 2>&1
$LEO eval recon --checkpoint \$run/export --data $R --by-motion --plot \$res/by_motion.png --sheet \$res/sheet.png \\
  --device ${EVAL_DEVICE:-cuda} > \$res/eval.jsonl 2> \$res/eval.err
python3 experiments/lia_diagnosis.py animator --checkpoint \$run/export --data $R --videos 3 >> \$res/eval.jsonl 2>> \$res/eval.err
python3 experiments/lia_diagnosis.py levels --checkpoint \$run/export --data $R --splits train test --videos 100 \\
  > \$res/levels.json 2>> \$res/eval.err
cp \$run/metrics.jsonl \$run/config.yaml \$res/ 2> /dev/null
echo "[\$(date -u +%T)] arm $arm done"; cut -c1-400 \$res/eval.jsonl
EOF
    setsid nohup bash $K/arm_$arm.sh > $RES/$arm/arm.log 2>&1 < /dev/null &
    echo $! >> $PIDS
  done
  echo "started $# arm(s), $MIN minutes each: $*"; sleep ${FIRST_LOOK:-90}; tail -n 2 $RES/*/train.log ;;
resume)  # one arm trains on ALONE from its last checkpoint (same warm machine), MINUTES more, then is scored again;
  # optional KEY=VALUE,... are added to its settings, '@STEP' in a value standing for the checkpoint's step and
  # '@STEP+N' for N steps later, e.g. optim.decay_start=@STEP,optim.decay_steps=@STEP+9000
  MIN=$2; arm=$3; [[ -f $K/arm_$arm.sh ]] || { echo "no arm $arm was started on this machine" >&2; exit 2; }
  last=$(ls /tmp/run_$arm/checkpoints/ 2> /dev/null | sed -n 's/^step_0*\([0-9][0-9]*\)\.pt$/\1/p' | sort -n | tail -n 1)
  more=""
  sets=${4:-}
  for kv in ${sets//,/ }; do
    key=${kv%%=*}; value=${kv#*=}; value=${value//@STEP/${last:-0}}
    [[ $value =~ ^[0-9]+\+[0-9]+$ ]] && value=$(( value ))
    more+=" --set $key=$value"
  done
  rm -rf $RES/${arm}_leg1 && mv $RES/$arm $RES/${arm}_leg1 && mkdir -p $RES/$arm  # the first leg's scores stay
  sed -e "s/train.max_minutes=[0-9.]*/train.max_minutes=$MIN/" -e "s/train.num_workers=[0-9]*/train.num_workers=8/" \
    -e "s| > \\\$res/train.log|$more > \$res/train.log|" $K/arm_$arm.sh > $K/arm_${arm}_more.sh
  echo "arm $arm from step ${last:-?}:$more"
  setsid nohup bash $K/arm_${arm}_more.sh > $RES/$arm/arm.log 2>&1 < /dev/null &
  echo $! > $PIDS
  echo "arm $arm resumed alone for $MIN minutes"; sleep ${FIRST_LOOK:-90}; tail -n 2 $RES/$arm/train.log ;;
stop)  # every arm saves after its current step and goes on to its export and scores (the budget is running out)
  pkill -TERM -f "cli.main [t]rain lia" || echo "no arm is training" ;;  # [t]: not this command's own shell
await)
  end=$(( $(date +%s) + $2 ))
  alive() { for p in $(cat $PIDS); do kill -0 "$p" 2> /dev/null && return 0; done; return 1; }
  while alive && [[ $(date +%s) -lt $end ]]; do sleep 15; done
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2> /dev/null
  for d in $RES/*/; do
    a=$(basename "$d"); echo "== $a"; cut -c1-700 "$d/arm.log"
    grep -h '"eval/' /tmp/run_$a/metrics.jsonl 2> /dev/null | tail -n 3 | cut -c1-300
    tail -n 1 /tmp/run_$a/metrics.jsonl 2> /dev/null | cut -c1-300
  done ;;
collect)
  shift; mkdir -p "$OUT"
  for arm in "$@"; do
    cp /tmp/run_$arm/metrics.jsonl $RES/$arm/ 2> /dev/null
    tar czf "$OUT/res_$arm.tgz" -C $RES "$arm"
    [[ -d /tmp/run_$arm/export ]] && tar cf - -C /tmp/run_$arm export | gzip -1 | split -b 15M - "$OUT/export_$arm.tgz.part_"
  done
  ls -la "$OUT" ;;
*) sed -n '2,20p' "$0"; exit 2 ;;
esac
