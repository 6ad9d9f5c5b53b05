#!/usr/bin/env bash
# Tables 3 and 4 (its analogue on Urban100) and Figures 3-6 of the experiment
# (docs/results.md) from the runs of tools/train_experiment.sh.
#
#   tools/experiment_report.sh RUNS_DIR [OUT_DIR]      (OUT_DIR: docs/results)
#
# Each (model, table) is one `liifsr evaluate` report in RUNS_DIR/eval/, written when it
# completes and skipped when it exists, so the script carries on after a stop and picks up
# runs that finish later. Then tools/results_tables.py gathers the reports into
# OUT_DIR/tables.md (and their tables into OUT_DIR.md where it exists, e.g. docs/results.md), `liifsr
# plot-log` draws the curves, and `liifsr compare` the figures.
#
# Environment: PRECISION (bf16; its measured PSNR difference from fp32 on Set5 is in the
# README), URBAN_IMAGES (10: Urban100 images scored for Table 3, spread over the set; 100
# for all), URBAN_IMAGES_T4 (5, for the Table 4 analogue), BENCHMARK (../shared/data/benchmark),
# LIIFSR (.venv/bin/liifsr), PYTHON (.venv/bin/python).
# Each finished run's last.safetensors is copied to RUNS_DIR/models/<run>.safetensors, so
# that the tables name the runs; runs not finished yet are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: tools/experiment_report.sh RUNS_DIR [OUT_DIR]}
out=${2:-docs/results}
precision=${PRECISION:-bf16}
urban=${URBAN_IMAGES:-10}
urban_t4=${URBAN_IMAGES_T4:-5}
bench=${BENCHMARK:-../shared/data/benchmark}
liifsr=${LIIFSR:-.venv/bin/liifsr}
python=${PYTHON:-.venv/bin/python}
mkdir -p "$out" "$runs/models" "$runs/eval"

source tools/runs.sh  # finished
models=(bicubic)
trained=()
for run in edsr-liif-relu-seed0 edsr-liif-siren30-seed0 edsr-liif-siren15-seed0 edsrless-liif-relu-seed0 \
           edsrless-liif-siren30-seed0 edsr-liif-relu-seed1 edsr-liif-siren15-seed1 \
           edsr-lte-seed0 edsr-thermal-seed0 edsr-lte-seed1 edsr-thermal-seed1 edsr-liif-relu-skip-seed0; do
    trained+=("$runs/$run")
    if ! finished "$runs/$run"; then
        echo "experiment_report: $run has not finished: left out of the tables" >&2
        continue
    fi
    cp "$runs/$run/last.safetensors" "$runs/models/$run.safetensors"
    models+=("$runs/models/$run.safetensors")
done

evaluate() {  # NAME MODEL PRECISION [liifsr evaluate options]: one report, unless it exists
    local report="$runs/eval/$1.json" model=$2 precision=$3
    shift 3
    [[ -f "$report" ]] && return
    echo "experiment_report: $report" >&2
    "$liifsr" evaluate --model "$model" --precision "$precision" --quiet --out "$report" "$@" > /dev/null
}
# Table by table, so that an interrupted report has whole tables for the first ones.
# Table 3: the benchmark protocol (Y, shave = scale), in-domain x2-x4 and out-of-domain x6, x8.
for model in "${models[@]}"; do
    evaluate "t3-sets-$(basename "$model" .safetensors)" "$model" "$precision" --scales 2,3,4,6,8 \
        --dataset "$bench/Set5" "$bench/Set14" "$bench/B100"
done
# bf16's PSNR difference from fp32, on Set5.
for model in "${models[@]:1}"; do
    [[ $precision == fp32 ]] || evaluate "t3-set5-fp32-$(basename "$model" .safetensors)" "$model" fp32 \
        --scales 2,3,4,6,8 --dataset "$bench/Set5"
done
for model in "${models[@]}"; do
    evaluate "t3-urban100-$(basename "$model" .safetensors)" "$model" "$precision" --scales 2,3,4,6,8 \
        --dataset "$bench/Urban100" --images "$urban"
done
# Table 4's protocol (RGB, shave = scale + 6, x2 to x30) on the largest images here.
for model in "${models[@]}"; do
    evaluate "t4-urban100-$(basename "$model" .safetensors)" "$model" "$precision" --scales 2,3,4,6,12,18,24,30 \
        --dataset "$bench/Urban100" --protocol div2k --images "$urban_t4"
done
into=()  # OUT_DIR.md's marked tables (docs/results.md), where that document exists
[[ -f "$out.md" ]] && into=(--into "$out.md")
"$python" tools/results_tables.py "$runs/eval" --runs "$runs" -o "$out/tables.md" "${into[@]}"
# Figures 3 and 4: learning rate and training loss of every run with an epoch done.
existing=()
for run in "${trained[@]}"; do  # runs with at least one epoch logged
    [[ -f "$run/log.csv" && $(wc -l < "$run/log.csv") -gt 1 ]] && existing+=("$run")
done
"$liifsr" plot-log "${existing[@]}" -o "$out/curves.png"
# Figures 5 and 6: ReLU next to SIREN-15 (and bicubic) at x30, once both runs have finished.
relu=$runs/models/edsr-liif-relu-seed0.safetensors siren=$runs/models/edsr-liif-siren15-seed0.safetensors
if [[ -f $relu && -f $siren ]]; then
    # Figure 5: the "w" of Set14's ppt3 cropped and fed directly as the LR input.
    [[ -f $out/figure5-ppt3-x30.png ]] || "$liifsr" compare "$bench/Set14/HR/ppt3.png" --models "$relu,$siren" \
        --scale 30 --lr-crop --box 288,50,44,36 -o "$out/figure5-ppt3-x30.png"
    # Figure 6: a photograph downsampled x30 (Urban100's img_009: a person, red on white).
    [[ -f $out/figure6-img009-x30.png ]] || "$liifsr" compare "$bench/Urban100/HR/img_009.webp" --models "$relu,$siren" \
        --scale 30 --box 330,20,300,420 -o "$out/figure6-img009-x30.png"
fi
