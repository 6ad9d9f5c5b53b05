#!/usr/bin/env bash
# The heat field's recipe study: short runs of configs/default-thermal.yaml (edsr-thermal, its
# encoder initialised from the default's), one per arm, each scored by held-out validation
# (never a benchmark); then tools/recipe_table.py prints what each arm scored and cost.
#
#   tools/recipe_study.sh OUT_DIR [ARM ...]        (default: every arm below)
#
# Arms run one after another; give each lane its own list (the script skips finished arms and
# resumes an interrupted one). Environment: EPOCHS (6: 720 iterations of batch 16), THREADS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tools/recipe_study.sh OUT_DIR [ARM ...]}
shift
epochs=${EPOCHS:-6}
declare -A arms=(
    [default]="optim.lr=4e-4 optim.schedule=cosine optim.min_lr=1e-5"
    [experiment]="optim.lr=1e-4 optim.schedule=step optim.milestones=[$((epochs / 3)),$((2 * epochs / 3))] optim.min_lr=0"
    [lr-2e-4]="optim.lr=2e-4 optim.schedule=cosine optim.min_lr=1e-5"
    [lr-1e-3]="optim.lr=1e-3 optim.schedule=cosine optim.min_lr=1e-5"
    [batch-32]="optim.lr=4e-4 optim.schedule=cosine optim.min_lr=1e-5 batch_size=32"
    [patch-64]="optim.lr=4e-4 optim.schedule=cosine optim.min_lr=1e-5 data.patch_size=64"
)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(default experiment lr-2e-4 lr-1e-3 batch-32 patch-64)
source tools/runs.sh
for name in "${names[@]}"; do
    [[ -n ${arms[$name]:-} ]] || { echo "recipe_study: no arm '$name' (arms: ${!arms[*]})" >&2; exit 2; }
    run=$out/$name
    finished "$run" && continue
    sets=(--set "epochs=$epochs" --set "val_every=$epochs")
    for item in ${arms[$name]}; do sets+=(--set "$item"); done
    "${LIIFSR:-.venv/bin/liifsr}" train configs/default-thermal.yaml --out "$run" --resume \
        --threads "${THREADS:-1}" "${sets[@]}"
done
"${PYTHON:-.venv/bin/python}" tools/recipe_table.py "$out"/*/
