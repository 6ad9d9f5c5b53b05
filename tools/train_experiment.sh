#!/usr/bin/env bash
# Train the paper's experiment (docs/results.md): the five models of configs/experiment/
# plus a second seed of edsr-liif-relu and edsr-liif-siren15; with STUDY=budget, the budget
# study instead: edsrless-liif-relu and edsrless-liif-siren30 at 1,200 iterations (seeds 0
# and 1) and 10,800 iterations (seed 0), configs/experiment/iters-*/; with STUDY=decoders,
# the decoders beyond the paper: edsr-lte and edsr-thermal (seed 0), seed 1 of SEED1
# (edsr-lte or edsr-thermal, the better of the two, once known) and their control,
# edsr-liif-relu-skip (EDSR-LIIF-ReLU plus the global skip both of them have; seed 0).
# Every run resumes from its last epoch (a finished run returns at once), so after a stop
# the same command carries on.
#
#   tools/train_experiment.sh RUNS_DIR [extra liifsr train options, e.g. --threads 1]
#   LANES=2 tools/train_experiment.sh RUNS_DIR
#   STUDY=budget LANES=2 tools/train_experiment.sh RUNS_DIR
#   STUDY=decoders LANES=2 [SEED1=edsr-lte] tools/train_experiment.sh RUNS_DIR
#
# LANES=1 (default) trains the runs one after another. LANES=2 trains two at a time, one
# CPU thread each: on a 2-core machine that other work shares, two single-thread runs
# lose less to that work than one 2-thread run, whose threads wait for each other.
# Runs land in RUNS_DIR/<config>-seed<N>/ (e.g. RUNS_DIR/iters-1200/edsrless-liif-relu-seed0/) (checkpoints, log.csv, TensorBoard events);
# RUNS_DIR/experiment.log collects the progress lines of all runs.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:?usage: tools/train_experiment.sh RUNS_DIR [liifsr train options]}
shift
liifsr=${LIIFSR:-.venv/bin/liifsr}
mkdir -p "$runs"

train() {  # CONFIG:SEED... [liifsr train options]: one run after another (CONFIG under configs/experiment/)
    local run preset seed
    local -a order=() options=()
    for run in "$@"; do
        if [[ $run == *:* ]]; then order+=("$run"); else options+=("$run"); fi
    done
    for run in "${order[@]}"; do
        preset=${run%:*} seed=${run#*:}
        echo "$(date -Is) start $preset seed $seed" >> "$runs/experiment.log"
        "$liifsr" train "configs/experiment/$preset.yaml" --out "$runs/$preset-seed$seed" \
            --set "seed=$seed" --resume "${options[@]}" 2>> "$runs/experiment.log"
        echo "$(date -Is) done $preset seed $seed" >> "$runs/experiment.log"
    done
}

budget() {  # the budget study; with LANES=2 the ReLU runs in one lane and the SIREN runs in the other
    local relu=(iters-1200/edsrless-liif-relu:0 iters-1200/edsrless-liif-relu:1 iters-10800/edsrless-liif-relu:0)
    local siren=(iters-1200/edsrless-liif-siren30:0 iters-1200/edsrless-liif-siren30:1 iters-10800/edsrless-liif-siren30:0)
    case ${LANES:-1} in
        1) train "${relu[@]:0:2}" "${siren[@]:0:2}" "${relu[2]}" "${siren[2]}" "$@" ;;
        2) train "${relu[@]}" --threads 1 "$@" &
           train "${siren[@]}" --threads 1 "$@" &
           wait ;;
        *) echo "train_experiment: LANES must be 1 or 2" >&2; exit 2 ;;
    esac
}
decoders() {  # LTE, the heat field and the skip control; with LANES=2 LTE's runs in one lane
    local lte=(edsr-lte:0) others=(edsr-thermal:0 edsr-liif-relu-skip:0)
    case ${SEED1:-} in
        "") ;;
        edsr-lte|edsr-thermal) lte+=("$SEED1:1") ;;
        *) echo "train_experiment: SEED1 must be edsr-lte or edsr-thermal" >&2; exit 2 ;;
    esac
    case ${LANES:-1} in
        1) train "${lte[@]}" "${others[@]}" "$@" ;;
        2) train "${lte[@]}" --threads 1 "$@" &
           train "${others[@]}" --threads 1 "$@" &
           wait ;;
        *) echo "train_experiment: LANES must be 1 or 2" >&2; exit 2 ;;
    esac
}
[[ ${STUDY:-paper} == budget ]] && { budget "$@"; exit; }
[[ ${STUDY:-paper} == decoders ]] && { decoders "$@"; exit; }
[[ ${STUDY:-paper} == paper ]] || { echo "train_experiment: STUDY must be paper, budget or decoders" >&2; exit 2; }

case ${LANES:-1} in
    1) train edsr-liif-relu:0 edsr-liif-siren15:0 edsrless-liif-relu:0 edsr-liif-siren30:0 \
             edsrless-liif-siren30:0 edsr-liif-relu:1 edsr-liif-siren15:1 "$@" ;;
    2) # About the same CPU time in each lane (an EDSR-LESS run costs about 0.6 of an EDSR run).
       train edsr-liif-relu:0 edsr-liif-siren15:0 edsr-liif-siren30:0 edsr-liif-siren15:1 --threads 1 "$@" &
       train edsrless-liif-relu:0 edsrless-liif-siren30:0 edsr-liif-relu:1 --threads 1 "$@" &
       wait ;;
    *) echo "train_experiment: LANES must be 1 or 2" >&2; exit 2 ;;
esac
