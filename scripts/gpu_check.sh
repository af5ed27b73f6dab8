#!/usr/bin/env bash
# One short GPU check (a few minutes): pose-only vs full-pipeline fps with FP16 YOLO-pose on CUDA for
# both shared videos, total fps of 1, 2 and 4 sources side by side (goal: 4 streams at 30 fps each),
# the classifier's latency on CUDA, and a 2-GPU-process training smoke test when there are two GPUs. Prints the figures and leaves the JSON files in $OUT (default gpu_check/).
#
#   bash scripts/gpu_check.sh [../shared/data/videos]
set -euo pipefail
VIDEOS=${1:-../shared/data/videos}
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), torch.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

for video in exercise_3people.avi basketball_2people.mp4; do
  echo "== $video: pose only vs full pipeline, FP16 PyTorch pose at 640 px"
  # one repeat: the live runs play the videos at their real rate, and the device time is short
  python scripts/bench_pipeline.py "$VIDEOS/$video" --device cuda --pose-backend torch --streams 1,2,4 --repeats 1 --out "$OUT/pipeline_${video%.*}.json" > /dev/null
  python -c "import json,sys; f=json.load(open(sys.argv[1])); l=f['live']; print(f\"pose only {f['pose_only_fps']} fps, full {f['pipeline_fps']} fps, ratio {f['ratio_pipeline_to_pose']}, live p95 / pose {l['p95_over_pose_stage']} (live run's own {l['p95_over_live_pose_stage']}), streams {f['streams_total_fps']}\")" "$OUT/pipeline_${video%.*}.json"
done

echo "== classifier on CUDA (1, 4, 16 persons)"
python scripts/bench_classifier.py --device cuda --repeats 100 --out "$OUT/classifier.json"

if [ "$(python -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  echo "== torchrun: 2 GPU processes (NCCL, mixed precision), 2 epochs on a generated pickle"
  python -m actionlstm sample "$OUT/sample.pkl" --classes 6 --clips-per-class 30 > /dev/null
  torchrun --standalone --nproc-per-node 2 -m actionlstm train --data "$OUT/sample.pkl" --epochs 2 --out "$OUT/ddp.pth" --device cuda --overwrite --json
fi
