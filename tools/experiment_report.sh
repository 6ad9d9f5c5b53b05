#!/usr/bin/env bash
# Tables 3 and 4 (its analogue on Urban100) and Figures 3-4 of the experiment
# (docs/experiment.md) from the runs of tools/train_experiment.sh.
#
#   tools/experiment_report.sh RUNS_DIR [OUT_DIR]      (OUT_DIR: docs/results)
#
# Environment: PRECISION (bf16; its measured PSNR difference from fp32 on Set5 is in the
# README), BENCHMARK (../shared/data/benchmark), LIIFSR (.venv/bin/liifsr).
# Each run's last.safetensors is copied to RUNS_DIR/models/<run>.safetensors, so that
# the tables name the runs; runs not trained yet are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: tools/experiment_report.sh RUNS_DIR [OUT_DIR]}
out=${2:-docs/results}
precision=${PRECISION:-bf16}
bench=${BENCHMARK:-../shared/data/benchmark}
liifsr=${LIIFSR:-.venv/bin/liifsr}
mkdir -p "$out" "$runs/models"

models=(bicubic)
trained=()
for run in edsr-liif-relu-seed0 edsr-liif-siren30-seed0 edsr-liif-siren15-seed0 edsrless-liif-relu-seed0 \
           edsrless-liif-siren30-seed0 edsr-liif-relu-seed1 edsr-liif-siren15-seed1; do
    if [[ ! -f "$runs/$run/last.safetensors" ]]; then
        echo "experiment_report: $run has no last.safetensors yet: left out" >&2
        continue
    fi
    cp "$runs/$run/last.safetensors" "$runs/models/$run.safetensors"
    models+=("$runs/models/$run.safetensors")
    trained+=("$runs/$run")
done

# Table 3: the benchmark protocol (Y, shave = scale), in-domain x2-x4 and out-of-domain x6, x8.
"$liifsr" evaluate --model "${models[@]}" --precision "$precision" --scales 2,3,4,6,8 \
    --dataset "$bench/Set5" "$bench/Set14" "$bench/B100" "$bench/Urban100" --out "$out/table3.json"
# Table 4's protocol (RGB, shave = scale + 6, x2 to x30) on the largest images here.
"$liifsr" evaluate --model "${models[@]}" --precision "$precision" --scales 2,3,4,6,12,18,24,30 \
    --dataset "$bench/Urban100" --protocol div2k --out "$out/table4-urban100.json"
# Figures 3 and 4: learning rate and training loss of every run.
"$liifsr" plot-log "${trained[@]}" -o "$out/curves.png"
