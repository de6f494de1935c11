#!/usr/bin/env bash
# Issue 9's benchmark suite (about 12 minutes on one H100; under a 10-minute limit per command, run PARTS in
# two calls). Each part has its own time limit and writes what it measured even when cut short. Markdown
# tables are printed and written to $OUT/*.md (default ./bench_out), with JSON beside them; $OUT/SUMMARY.md
# holds them all.
#   bash benchmarks/gpu_suite.sh                      # from the repository root; PY=python3 by default
#   OUT=/tmp/b PARTS="render generate" bash benchmarks/gpu_suite.sh
# Parts: render (item 1 + profile), generate (item 2), train (item 3, one GPU), ddp (item 3, two GPUs via
# torchrun + accelerate's DDP, when at least two are visible), generate_fast (item 2 with channels_last and
# the cLMDM U-Net under CUDA graphs: is the sampler loop launch-bound?); fused (opt-in, about a minute: issue 22's
# Triton activation alone, benchmarks/bias_act.py, and the bf16 LIA step with and without it, train_fused.md).
# encode (opt-in, about two minutes: issue 22's encode-motion frames/s on DATA, default ../shared/data/videos;
# mp4 needs PyAV, frame folders do not).
# SMOKE=1: tiny CPU sizes (about a minute).
set -uo pipefail  # no -e: one failing part must not lose the others
cd "$(dirname "$0")/.."
OUT=${OUT:-./bench_out}; PY=${PY:-python3}; PARTS=${PARTS:-"render generate train ddp generate_fast"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ "${SMOKE:-0}" = 1 ]; then
  RENDER=(--device cpu --threads 1 --sizes 64 --batch 2 --channel-max 16 --style-dim 32 --compile-sizes --profile-size 64
          --profile-variant "bf16 weights + channels_last" --per-frame-frames 1 --repeats 1 --variants fp32 "bf16 weights + channels_last")
  GENERATE=(--device cpu --threads 1 --size 64 --frames 8 --videos 1 --samplers ddim:2 --channel-max 16 --style-dim 32
            --lmdm-preset tiny --sequence-length 4 --repeats 1)
  TRAIN=(--device cpu --threads 1 --size 64 --batch 2 --channel-max 16 --style-dim 32 --no-vgg --precisions fp32
         --lmdm-preset tiny --sequence-length 4 --lmdm-batch 2 --cddpm-preset tiny --cddpm-size 16 --cddpm-batch 2
         --warmup 1 --steps 1)
  FAST=(--device cpu --threads 1 --size 64 --frames 8 --videos 1 --samplers ddim:2 --channel-max 16 --style-dim 32
        --lmdm-preset tiny --sequence-length 4 --repeats 1 --channels-last)
  LIMIT=(60 60 60 60 60)
else
  RENDER=(--sizes 256 128 --batch 64 --compile-sizes 256 --profile-size 256 --per-frame-frames 16 --repeats 5
          --variants fp32 "bf16 autocast" "bf16 weights" "bf16 weights + channels_last" "bf16 weights + compile"
          "bf16 autocast + compile" --profile-variant "bf16 weights + compile" --budget 190)
  GENERATE=(--size 256 --frames 128 --videos 1 64 --samplers ddim:50 dpm++:20 --repeats 2 --budget 38)
  TRAIN=(--size 256 --batch 32 --precisions bf16 bf16-contiguous fp32 bf16-compile --profile bf16 --breakdown bf16
         --warmup 3 --steps 8)
  FAST=(--size 256 --frames 128 --videos 1 --samplers ddim:50 dpm++:20 --channels-last --compile-lmdm --repeats 2
        --budget 30)
  LIMIT=(230 60 330 50 60)  # seconds per part: 12 minutes in all, most often less (compiles: two in render, one in train)
fi
GPUS=$($PY -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)

part() {  # part NAME LIMIT_S COMMAND...: run with a limit (SIGINT first: the script writes its partial report)
  local name=$1 limit=$2; shift 2
  echo "=== $name (limit ${limit}s) ==="
  local start=$SECONDS
  timeout -s INT -k 10 "$limit" "$@" 2> >(tail -n 30 >"$OUT/$name.stderr.txt")
  echo "=== $name: exit $? after $((SECONDS - start)) s ==="
}

for p in $PARTS; do
  case $p in
    render) part render "${LIMIT[0]}" $PY benchmarks/render.py "${RENDER[@]}" --out "$OUT" ;;
    generate) part generate "${LIMIT[1]}" $PY benchmarks/generate.py "${GENERATE[@]}" --out "$OUT" ;;
    train) part train "${LIMIT[2]}" $PY benchmarks/train_throughput.py "${TRAIN[@]}" --out "$OUT" ;;
    ddp)
      if [ "$GPUS" -ge 2 ]; then
        part train_ddp "${LIMIT[3]}" $PY -m torch.distributed.run --standalone --nproc_per_node 2 \
          benchmarks/train_throughput.py --only lia --precisions bf16 --name train_ddp --warmup 3 --steps 8 --out "$OUT"
      else
        echo "=== ddp: skipped ($GPUS GPU(s) visible) ==="
      fi ;;
    generate_fast) part generate_fast "${LIMIT[4]}" $PY benchmarks/generate.py "${FAST[@]}" --name generate_fast --out "$OUT" ;;
    fused)
      part bias_act 90 $PY benchmarks/bias_act.py --out "$OUT"
      part train_fused 150 $PY benchmarks/train_throughput.py --only lia --precisions bf16 --fused off on --profile bf16 \
        --warmup 3 --steps 8 --name train_fused --out "$OUT" ;;
    encode) part encode_motion 150 $PY benchmarks/encode_motion.py --data "${DATA:-../shared/data/videos}" --size 256 \
              --batch-frames 1 64 --dtypes fp32 bf16 --max-frames 64 --out "$OUT" ;;
    *) echo "unknown part $p" >&2 ;;
  esac
done
$PY benchmarks/summarize.py "$OUT"
