#!/usr/bin/env bash
# The recipe control of claim 1 (docs/results.md): the EDSR-LESS ReLU / SIREN-30 pair of
# configs/experiment/ at 3,600 iterations under one common schedule (cosine decay to 0), each
# at learning rates 1e-4, 4e-4 and 1e-3, seed 0; with SEEDS="1 2" and LR_RELU / LR_SIREN (the
# rate each decoder's held-out validation picked), the further seeds at each decoder's rate.
#
#   tools/recipe_control.sh OUT_DIR                          the learning-rate sweep
#   SEEDS="1 2" LR_RELU=4e-4 LR_SIREN=4e-4 tools/recipe_control.sh OUT_DIR
#
# Runs land in OUT_DIR/<preset>-lr<rate>-seed<N>/. Every run resumes from its last epoch and a
# finished run is skipped, so after a stop the same command carries on. Several lanes may run
# the same command side by side (REVERSE=1 walks the list from its end): a lock file gives each
# run, and each report, to one lane. Each finished run's last model is then scored as the claims are
# (tools/claims_report.sh): Set5, Set14, B100 and Urban100 (10 of its 100, the claims'
# subset) at x2, x4, x8, benchmark protocol, bf16, into OUT_DIR/eval/<set>-<run>.json (a
# report that exists is skipped); ONLY_EVALUATE=1 skips the training. Last, the held-out table
# of every finished run (tools/recipe_table.py). Environment: THREADS (1), BENCHMARK
# (../shared/data/benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tools/recipe_control.sh OUT_DIR}
mkdir -p "$out"
source tools/runs.sh
runs=()
if [[ -n ${SEEDS:-} ]]; then
    for seed in $SEEDS; do
        runs+=("edsrless-liif-relu:${LR_RELU:?set LR_RELU}:$seed" "edsrless-liif-siren30:${LR_SIREN:?set LR_SIREN}:$seed")
    done
else
    for lr in 4e-4 1e-3 1e-4; do
        runs+=("edsrless-liif-relu:$lr:0" "edsrless-liif-siren30:$lr:0")
    done
fi
[[ -z ${REVERSE:-} ]] || mapfile -t runs < <(printf '%s\n' "${runs[@]}" | tac)
for spec in "${runs[@]}"; do
    [[ -z ${ONLY_EVALUATE:-} ]] || break
    IFS=: read -r preset lr seed <<< "$spec"
    run=$out/$preset-lr$lr-seed$seed
    claim "$run" || continue  # another lane has it
    if ! finished "$run"; then
        echo "$(date -Is) start $run" >> "$out/control.log"
        "${LIIFSR:-.venv/bin/liifsr}" train "configs/experiment/$preset.yaml" --out "$run" --resume \
            --threads "${THREADS:-1}" --set "seed=$seed" --set "optim.lr=$lr" \
            --set optim.schedule=cosine --set optim.min_lr=0 2>> "$out/control.log"
        echo "$(date -Is) done $run" >> "$out/control.log"
    fi
    exec {lock}>&-
done
bench=${BENCHMARK:-../shared/data/benchmark}
mkdir -p "$out/eval"
done_runs=()
for run in "$out"/*-seed*/; do
    run=${run%/}
    finished "$run" || continue
    done_runs+=("$run")
    for set in Set5 Set14 Urban100 B100; do
        report=$out/eval/$(tr '[:upper:]' '[:lower:]' <<< "$set")-$(basename "$run").json
        [[ -f $report ]] && continue
        claim "$report" || continue  # another lane is scoring it
        options=(--dataset "$bench/$set" --protocol benchmark --scales 2,4,8)
        [[ $set != Urban100 ]] || options+=(--images 10)
        echo "$(date -Is) evaluate $run on $set" >> "$out/control.log"
        OMP_NUM_THREADS=${THREADS:-1} "${LIIFSR:-.venv/bin/liifsr}" evaluate --model "$run/last.safetensors" \
            --precision bf16 --quiet --out "$report" "${options[@]}" > /dev/null
        exec {lock}>&-
    done
done
[[ ${#done_runs[@]} -eq 0 ]] || "${PYTHON:-.venv/bin/python}" tools/recipe_table.py "${done_runs[@]}"
