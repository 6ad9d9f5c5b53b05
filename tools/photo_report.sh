#!/usr/bin/env bash
# The README's photo table: models on clean and degraded inputs, at x2 and x4, on the
# images held out of the training folders and on Set14.
#
#   tools/photo_report.sh OUT_DIR [MODEL ...]      (models: bicubic, photo and default)
#
# Each (dataset, model, degradation) is one `liifsr evaluate` JSON report in OUT_DIR, skipped when it
# exists, so the script carries on after a stop; then tools/photo_table.py prints the table.
# Held-out images: the 10 that configs/default-thermal.yaml holds out of ../shared/data/train
# (linked into OUT_DIR/heldout/HR), scored whole in RGB with shave = scale + 6 (the div2k
# protocol); Set14: the benchmark protocol (Y, shave = scale).
# Environment: PRECISION (bf16), BENCHMARK (../shared/data/benchmark), LIIFSR, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tools/photo_report.sh OUT_DIR [MODEL ...]}
shift
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(bicubic photo default)
precision=${PRECISION:-bf16}
bench=${BENCHMARK:-../shared/data/benchmark}
liifsr=${LIIFSR:-.venv/bin/liifsr}
python=${PYTHON:-.venv/bin/python}
"$python" tools/link_heldout.py configs/default-thermal.yaml "$out/heldout/HR"

reports=()
for spec in clean jpeg:75 jpeg:50 noise:10 blur:1.2,noise:5,jpeg:85; do
    degrade=()
    [[ $spec == clean ]] || degrade=(--degrade "$spec")
    for model in "${models[@]}"; do
        name="$(basename "$model" .safetensors)-${spec//[:,]/-}"
        [[ -f "$out/heldout-$name.json" ]] || "$liifsr" evaluate --model "$model" --dataset "$out/heldout" \
            --protocol div2k --scales 2,4 --precision "$precision" "${degrade[@]}" --quiet --out "$out/heldout-$name.json" > /dev/null
        [[ -f "$out/set14-$name.json" ]] || "$liifsr" evaluate --model "$model" --dataset "$bench/Set14" --scales 2,4 \
            --precision "$precision" "${degrade[@]}" --quiet --out "$out/set14-$name.json" > /dev/null
        reports+=("$out/heldout-$name.json" "$out/set14-$name.json")
    done
done
"$python" tools/photo_table.py "${reports[@]}"
