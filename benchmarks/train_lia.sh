#!/usr/bin/env bash
# LIA training throughput: one GPU vs two GPUs (DDP via torchrun), bf16, batch 32 per GPU, full-width model
# (channel_max 512, style_dim 512), VGG19 perceptual loss with random weights (same FLOPs as the real one),
# GAN loss on. Synthetic humans as data. Prints a table of images/s (mean over steps after the first 5).
#   bash benchmarks/train_lia.sh [SIZES="128 256"] [STEPS=25]
set -euo pipefail
SIZES=${SIZES:-"128 256"}; STEPS=${STEPS:-25}; WORK=${WORK:-/tmp/leo-bench-train}
LEO="python3 -m leo_video.cli.main"
rm -rf "$WORK"; mkdir -p "$WORK"
summary() { python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][5:]; print(sum(x['items_per_s'] for x in r)/len(r))" "$1"; }
echo "| size | GPUs | batch (global) | images/s |"
echo "|---|---|---|---|"
for S in $SIZES; do
  $LEO make-synthetic --out "$WORK/data$S" --videos 16 --frames 32 --size "$S" --no-progress >/dev/null
  common=(--config synthetic64 --set data.root="$WORK/data$S" --set model.size="$S" --set model.channel_max=512
          --set model.style_dim=512 --set train.max_steps="$STEPS" --set train.log_every=1 --set train.mixed_precision=bf16
          --set loss.perceptual_weight=10 --set loss.vgg_random_init=true --set train.num_workers=6
          --set data.test_root=null --set train.eval_every=0 --set train.image_every=0 --set train.checkpoint_every=100000)
  $LEO train lia "${common[@]}" --set train.batch_size=32 --run-dir "$WORK/r1_$S" >/dev/null 2>&1
  echo "| $S | 1 | 32 | $(summary "$WORK/r1_$S/metrics.jsonl") |"
  if [ "$(python3 -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    torchrun --standalone --nproc_per_node 2 -m leo_video.cli.main train lia "${common[@]}" --set train.batch_size=64 \
      --run-dir "$WORK/r2_$S" >"$WORK/r2_$S.log" 2>&1
    echo "| $S | 2 (DDP) | 64 | $(summary "$WORK/r2_$S/metrics.jsonl") |"
  fi
done
