#!/usr/bin/env bash
# Train the default's and the photo model's next stages side by side on one CUDA GPU, then
# score both as the README's tables do.
#
#   tools/train_products_on_gpu.sh [DATA] [OUT_DIR]
#
# DATA (default ../shared/data) holds train/{bsds200,bsds500-test,t91} and
# benchmark/{Set5,Urban100}; OUT_DIR (default runs/gpu-products) gets one run folder per
# model and the reports. Run it from the repository root with liifsr importable by $PYTHON
# (default python3; PYTHONPATH=src is enough where torch, safetensors, Pillow, PyYAML and
# tqdm are installed).
#
#   default: edsr-thermal-refined with a context branch, trained on at GPU batch 64
#            (configs/default-thermal-context.yaml: Adam from 2e-4, cosine decay to 1e-6), the
#            clean images.
#   photo:   edsr-thermal-photo with a context branch, trained on at GPU batch 64
#            (configs/photo-thermal-context.yaml: the JPEG-weighted degradations, Adam from
#            2e-4, cosine decay).
# An epoch is 481 images x repeat 12 / batch 64 = 90 iterations. Both runs resume from their
# last epoch, so after a stop the same command carries on. Then both runs' last models and
# today's default (edsr-liif-relu-skip-shared): held-out validation (the runs' own logs), Set5 x4
# and Urban100 (10 images) x4 (benchmark protocol, bf16) into OUT_DIR/benchmarks.json, and the
# held-out images whole at x4, clean, jpeg:75 and noise:10 (div2k protocol) into
# OUT_DIR/heldout-*.json.
# Environment: EPOCHS_DEFAULT (80), EPOCHS_PHOTO (60), WORKERS per run (7), DEVICE (cuda; cpu
# for a dry run), TRAIN_OPTIONS (more `liifsr train` options for both runs), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(realpath "${1:-../shared/data}")
out=${2:-runs/gpu-products}
python=${PYTHON:-python3}
workers=${WORKERS:-7}
device=${DEVICE:-cuda}
[[ $device == cpu ]] || "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to PyTorch')"
mkdir -p "$out"

train_dirs=("$data/train/bsds200" "$data/train/bsds500-test" "$data/train/t91")
common=(--device "$device" --workers "$workers" --resume --set "data.train_dirs=[$(IFS=,; echo "${train_dirs[*]}")]"
        --set batch_size=64 --set data.repeat=12 --set val_every=10 ${TRAIN_OPTIONS:-})
"$python" -m liifsr train configs/default-thermal-context.yaml --out "$out/default" "${common[@]}" \
    --set "epochs=${EPOCHS_DEFAULT:-80}" > "$out/default.log" 2>&1 &
default_pid=$!
"$python" -m liifsr train configs/photo-thermal-context.yaml --out "$out/photo" "${common[@]}" \
    --set "epochs=${EPOCHS_PHOTO:-60}" > "$out/photo.log" 2>&1 &
photo_pid=$!
wait "$default_pid" || { tail -5 "$out/default.log"; exit 1; }
wait "$photo_pid" || { tail -5 "$out/photo.log"; exit 1; }

# The held-out images, as the runs split them, for the degraded-input scores.
"$python" tools/link_heldout.py configs/default-thermal.yaml "$out/heldout/HR" --train-dirs "${train_dirs[@]}"

models=("$out/default/last.safetensors" "$out/photo/last.safetensors" edsr-liif-relu-skip-shared)
for run in default photo; do
    echo "$run: held-out $(tail -n 1 "$out/$run/log.csv" | cut -d, -f4) dB (mean of x2, x4; last epoch)"
done
"$python" -m liifsr evaluate --model "${models[@]}" --dataset "$data/benchmark/Set5" "$data/benchmark/Urban100" \
    --images 10 --protocol benchmark --scales 4 --device "$device" --precision bf16 --quiet --out "$out/benchmarks.json"
for degrade in none jpeg:75 noise:10; do
    options=()
    [[ $degrade == none ]] || options=(--degrade "$degrade")
    "$python" -m liifsr evaluate --model "${models[@]}" --dataset "$out/heldout" --protocol div2k --scales 4 \
        --device "$device" --precision bf16 --quiet --out "$out/heldout-${degrade/:/}.json" "${options[@]}"
done
