#!/usr/bin/env bash
# Train the paper's experiment (docs/results.md): the five models of configs/experiment/
# plus a second seed of edsr-liif-relu and edsr-liif-siren15, one run after another.
# Every run resumes from its last epoch, so after a stop the same command carries on.
#
#   tools/train_experiment.sh RUNS_DIR [extra liifsr train options, e.g. --threads 1]
#
# Runs land in RUNS_DIR/<preset>-seed<N>/ (checkpoints, log.csv, TensorBoard events);
# RUNS_DIR/experiment.log collects the progress lines of all runs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: tools/train_experiment.sh RUNS_DIR [liifsr train options]}
shift
liifsr=${LIIFSR:-.venv/bin/liifsr}
mkdir -p "$runs"
for run in edsr-liif-relu:0 edsr-liif-siren15:0 edsrless-liif-relu:0 edsr-liif-siren30:0 \
           edsrless-liif-siren30:0 edsr-liif-relu:1 edsr-liif-siren15:1; do
    preset=${run%:*} seed=${run#*:}
    echo "$(date -Is) start $preset seed $seed" >> "$runs/experiment.log"
    "$liifsr" train "configs/experiment/$preset.yaml" --out "$runs/$preset-seed$seed" \
        --set "seed=$seed" --resume "$@" 2>> "$runs/experiment.log"
    echo "$(date -Is) done $preset seed $seed" >> "$runs/experiment.log"
done
