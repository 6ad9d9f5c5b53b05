#!/usr/bin/env bash
# Train a model on one CUDA GPU, then check the GPU path and time it.
#
#   tools/train_on_gpu.sh [CONFIG] [RUN_DIR] [-- extra `liifsr train` options]
#
# CONFIG defaults to configs/default-edsr-skip.yaml (the bundled default model's recipe)
# and RUN_DIR to runs/gpu. Run it from the repository root, with liifsr installed in
# $PYTHON (default: python3, e.g. that of the active virtual environment; see the README)
# and the training images where the config points (../shared/data/train for the
# default; add `--set data.train_dirs=[...]` otherwise).
# Steps:
#   1. `liifsr train CONFIG --out RUN_DIR --device cuda` (pass -- --resume to continue a run);
#   2. benchmarks/check_cuda.py: the official-LIIF fixtures and the fast-vs-literal
#      decoder comparison on the GPU, with TF32 off and on;
#   3. benchmarks/bench_decoder.py and benchmarks/bench_train.py on the GPU.
# Logs of steps 2 and 3 are written to RUN_DIR/*.txt as well as printed.
#
# Example, with the options that trained the bundled model (one H200, about 4 minutes):
#   tools/train_on_gpu.sh configs/default-edsr-skip.yaml runs/default -- \
#       --set batch_size=64 --set data.repeat=12 --set epochs=95 --workers 14
set -euo pipefail
PYTHON=${PYTHON:-python3}

CONFIG=configs/default-edsr-skip.yaml
RUN_DIR=runs/gpu
if [[ $# -gt 0 && $1 != "--" ]]; then CONFIG=$1; shift; fi
if [[ $# -gt 0 && $1 != "--" ]]; then RUN_DIR=$1; shift; fi
if [[ $# -gt 0 && $1 == "--" ]]; then shift; fi

"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to PyTorch')"
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name())"
mkdir -p "$RUN_DIR"

"$PYTHON" -m liifsr train "$CONFIG" --out "$RUN_DIR" --device cuda "$@"
"$PYTHON" benchmarks/check_cuda.py | tee "$RUN_DIR/check_cuda.txt"
"$PYTHON" benchmarks/bench_decoder.py --device cuda | tee "$RUN_DIR/bench_decoder_cuda.txt"
"$PYTHON" benchmarks/bench_train.py --device cuda --iters 20 --warmup 5 | tee "$RUN_DIR/bench_train_cuda.txt"
echo "model: $RUN_DIR/last.safetensors (best on the held-out images: $RUN_DIR/best.safetensors)"
