#!/usr/bin/env bash
# One prepared GPU session (device tool): train the default model within a time budget,
# then the CUDA correctness check and the GPU benchmarks. Needs device-data/train (a copy
# of ../shared/data/train) and .whl/ (pypng) carried along; results land in $OUT.
#   TRAIN_SECONDS=380 bash tools/device_session.sh
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=$PWD/src:/tmp/site
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
DATA='[device-data/train/bsds200,device-data/train/bsds500-test,device-data/train/t91]'
COMMON=(configs/default-edsr-skip.yaml --device cuda --workers 12 --set "data.train_dirs=$DATA"
        --set batch_size=32 --set data.repeat=6 --set data.val_max_size=0 --set val_every=5)

# 1. probe: two short epochs give the seconds per epoch, hence how many fit the budget.
python3 -m liifsr train "${COMMON[@]}" --out /tmp/probe --set epochs=2 --set val_every=1 2>&1 | tail -3
EPOCH_S=$(python3 -c "import csv; rows=list(csv.DictReader(open('/tmp/probe/log.csv'))); print(rows[-1]['seconds'])")
EPOCHS=$(python3 -c "print(max(5, int(${TRAIN_SECONDS:-380} / ($EPOCH_S * 1.1))))")
echo "probe: ${EPOCH_S}s per epoch -> $EPOCHS epochs"

# 2. the default model.
timeout $(( ${TRAIN_SECONDS:-380} + 60 )) python3 -m liifsr train "${COMMON[@]}" --out runs/default --set epochs=$EPOCHS \
    > "$OUT/train.log" 2>&1; echo "train exit $?"
tail -5 "$OUT/train.log"
cp runs/default/best.safetensors runs/default/last.safetensors runs/default/log.csv "$OUT/" 2>/dev/null
cp runs/default/config.yaml "$OUT/" 2>/dev/null

# 3. CUDA correctness and GPU speed.
timeout 60 python3 benchmarks/check_cuda.py > "$OUT/check_cuda.txt" 2>&1; cat "$OUT/check_cuda.txt" | tail -30
timeout 60 python3 benchmarks/bench_decoder.py --device cuda > "$OUT/bench_decoder_cuda.txt" 2>&1; cat "$OUT/bench_decoder_cuda.txt"
timeout 60 python3 benchmarks/bench_train.py --device cuda --iters 20 --warmup 5 > "$OUT/bench_train_cuda.txt" 2>&1; cat "$OUT/bench_train_cuda.txt"
