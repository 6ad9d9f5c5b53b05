#!/usr/bin/env bash
# The budget study's reports, tables and plot (docs/results.md) from the runs of
# `STUDY=budget tools/train_experiment.sh RUNS_DIR`.
#
#   tools/budget_report.sh RUNS_DIR [OUT_DIR]      (OUT_DIR: docs/results)
#
# Each budget and seed whose ReLU and SIREN-30 runs have both finished
# (RUNS_DIR/iters-<I>/edsrless-liif-{relu,siren30}-seed<N>/) gets its runs' last.safetensors
# copied to RUNS_DIR/models/edsrless-liif-{relu,siren30}-i<I>-seed<N>.safetensors and three
# `liifsr evaluate` reports, RUNS_DIR/eval/i<I>-seed<N>-{set5-set14,b100,urban100}.json, with
# Table 3's protocol (Y, shave = scale) at x2, x4 and x8; the 3,600-iteration point, seed 0,
# is the bundled edsrless-liif-relu and edsrless-liif-siren30 (the experiment's runs). Bicubic
# gets the same three reports once (bicubic-*.json). A report is skipped when it exists, so
# the script carries on after a stop and picks up runs that finish later. Then
# tools/budget_study.py prints the tables, draws OUT_DIR/budget.png and fills the tables
# into OUT_DIR.md (docs/results.md) where that document exists.
#
# Environment: PRECISION (bf16), URBAN_IMAGES (10), BENCHMARK (../shared/data/benchmark),
# LIIFSR (.venv/bin/liifsr), PYTHON (.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: tools/budget_report.sh RUNS_DIR [OUT_DIR]}
out=${2:-docs/results}
precision=${PRECISION:-bf16}
urban=${URBAN_IMAGES:-10}
bench=${BENCHMARK:-../shared/data/benchmark}
liifsr=${LIIFSR:-.venv/bin/liifsr}
python=${PYTHON:-.venv/bin/python}
source tools/runs.sh  # finished
mkdir -p "$out" "$runs/models" "$runs/eval"

report() {  # NAME MODEL...: the three reports of one budget and seed, each unless it exists
    local name=$1 group report
    shift
    local -a models=() datasets
    for model in "$@"; do models+=(--model "$model"); done
    for group in set5-set14 b100 urban100; do
        report="$runs/eval/$name-$group.json"
        [[ -f $report ]] && continue
        case $group in
            set5-set14) datasets=(--dataset "$bench/Set5" "$bench/Set14") ;;
            b100) datasets=(--dataset "$bench/B100") ;;
            urban100) datasets=(--dataset "$bench/Urban100" --images "$urban") ;;
        esac
        echo "budget_report: $report" >&2
        "$liifsr" evaluate "${models[@]}" "${datasets[@]}" --scales 2,4,8 --precision "$precision" --quiet \
            --out "$report" > /dev/null
    done
}
report bicubic bicubic
report i3600-seed0 edsrless-liif-relu edsrless-liif-siren30
for relu in "$runs"/iters-*/edsrless-liif-relu-seed*/; do
    relu=${relu%/} siren=${relu/liif-relu/liif-siren30}
    iterations=$(basename "$(dirname "$relu")") seed=${relu##*-seed}
    iterations=${iterations#iters-}
    if ! finished "$relu" || ! finished "$siren"; then
        echo "budget_report: $iterations iterations, seed $seed: not both finished, left out" >&2
        continue
    fi
    name=i$iterations-seed$seed
    cp "$relu/last.safetensors" "$runs/models/edsrless-liif-relu-$name.safetensors"
    cp "$siren/last.safetensors" "$runs/models/edsrless-liif-siren30-$name.safetensors"
    report "$name" "$runs/models/edsrless-liif-relu-$name.safetensors" "$runs/models/edsrless-liif-siren30-$name.safetensors"
done
into=()
[[ -f "$out.md" ]] && into=(--into "$out.md")
"$python" tools/budget_study.py "$runs/eval" -o "$out/budget.png" "${into[@]}"
