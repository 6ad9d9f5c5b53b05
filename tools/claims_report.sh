#!/usr/bin/env bash
# The paper's claims as paired differences with 95 % intervals (docs/results.md, "The
# claims"): the five bundled paper models scored image by image, then B - A per dataset and
# scale for each pair the claims compare.
#
#   tools/claims_report.sh OUT_DIR [--into docs/results.md]
#
# 1. `liifsr evaluate --out OUT_DIR/eval/<set>-<model>.json` (JSON: per-image PSNR, SSIM,
#    edge width and edge slope) for bicubic and the five models, in PRECISION, set by set in SETS' order:
#    Set5, Set14, B100 and Urban100 (URBAN_IMAGES of its 100, spread over the set) with the
#    benchmark protocol (Y, shave = scale) at SCALES; "Urban100-div2k": Urban100
#    (URBAN_IMAGES_T4 images) with the div2k protocol (RGB, shave = scale + 6) at
#    T4_SCALES, for the edge scores at x30. A report that exists is skipped, so the script
#    resumes after a stop.
# 2. `tools/paired_stats.py` for each pair of PSNR_PAIRS (PSNR) and EDGE_PAIRS (edge width,
#    edge slope and PSNR): OUT_DIR/pairs/<metric>-<B>-minus-<A>.md, one full table per pair.
# 3. `tools/claims_table.py`: the same differences as compact tables, OUT_DIR/claims.md
#    (and, with --into, into that document's marked blocks).
#
# Environment: PRECISION (bf16), SCALES (2,4,8), SETS (Set5 Set14 Urban100-div2k Urban100
# B100), URBAN_IMAGES (10), URBAN_IMAGES_T4 (5), T4_SCALES (4,30), IMAGES (score only this
# many images of every set: a quick check), EDGE_SCALES (4,8,30: the edge table's), MODELS
# (bundled names: bicubic and the five), RESAMPLES (10000), BENCHMARK (../shared/data/benchmark),
# LIIFSR (.venv/bin/liifsr), PYTHON (.venv/bin/python). Threads: as torch's default
# (OMP_NUM_THREADS=1 for one).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: tools/claims_report.sh OUT_DIR [--into DOCUMENT]"
[[ $# -ge 1 && $1 != -* ]] || { echo "claims_report: error: $usage" >&2; exit 2; }
out=$1
into=()
if [[ $# -gt 1 ]]; then
    [[ $# -eq 3 && $2 == --into ]] || { echo "claims_report: error: $usage" >&2; exit 2; }
    [[ -f $3 ]] || { echo "claims_report: error: no document $3 to fill (give an existing file)" >&2; exit 2; }
    into=(--into "$3")
fi
precision=${PRECISION:-bf16}
scales=${SCALES:-2,4,8}
sets=${SETS:-Set5 Set14 Urban100-div2k Urban100 B100}
urban=${URBAN_IMAGES:-10}
urban_t4=${URBAN_IMAGES_T4:-5}
t4_scales=${T4_SCALES:-4,30}
edge_scales=${EDGE_SCALES:-4,8,30}
images=${IMAGES:-}
models=${MODELS:-bicubic edsr-liif-relu edsr-liif-siren30 edsr-liif-siren15 edsrless-liif-relu edsrless-liif-siren30}
resamples=${RESAMPLES:-10000}
bench=${BENCHMARK:-../shared/data/benchmark}
liifsr=${LIIFSR:-.venv/bin/liifsr}
python=${PYTHON:-.venv/bin/python}

# The claims' pairs, "LABEL|A|B": the differences are B - A.
PSNR_PAIRS=(
    "SIREN-30 - ReLU, EDSR|edsr-liif-relu|edsr-liif-siren30"
    "SIREN-15 - ReLU, EDSR|edsr-liif-relu|edsr-liif-siren15"
    "SIREN-15 - SIREN-30, EDSR|edsr-liif-siren30|edsr-liif-siren15"
    "SIREN-30 - ReLU, EDSR-LESS|edsrless-liif-relu|edsrless-liif-siren30"
    "EDSR - EDSR-LESS, ReLU|edsrless-liif-relu|edsr-liif-relu"
    "EDSR - EDSR-LESS, SIREN-30|edsrless-liif-siren30|edsr-liif-siren30"
)
EDGE_PAIRS=("${PSNR_PAIRS[0]}" "${PSNR_PAIRS[1]}" "${PSNR_PAIRS[3]}")

for set in $sets; do
    [[ -d $bench/${set%-div2k} ]] || { echo "claims_report: error: no benchmark set $bench/${set%-div2k} (see BENCHMARK, SETS)" >&2; exit 2; }
done
mkdir -p "$out/eval" "$out/pairs"

evaluate() {  # NAME MODEL [liifsr evaluate options]: one report, unless it exists
    local report="$out/eval/$1-$2.json" model=$2
    shift 2
    [[ -f $report ]] && return
    echo "claims_report: $report" >&2
    "$liifsr" evaluate --model "$model" --precision "$precision" --quiet --out "$report" "$@" > /dev/null
}
# Set by set over the models, in SETS' order (the small sets' pairs are complete first).
for set in $sets; do
    name=$(tr '[:upper:]' '[:lower:]' <<< "$set")
    case $set in
        *-div2k) options=(--dataset "$bench/${set%-div2k}" --protocol div2k --scales "$t4_scales") n=$urban_t4 ;;
        Urban100) options=(--dataset "$bench/$set" --protocol benchmark --scales "$scales") n=$urban ;;
        *) options=(--dataset "$bench/$set" --protocol benchmark --scales "$scales") n=all ;;
    esac
    n=${images:-$n}
    [[ $n == all ]] || options+=(--images "$n")
    for model in $models; do
        evaluate "$name" "$model" "${options[@]}"
    done
done

reports=("$out"/eval/*.json)
table_pairs=()
pair_tables() {  # METRIC PAIR...: paired_stats.py's table of each pair whose models were scored
    local metric=$1 pair label a b table
    shift
    for pair in "$@"; do
        IFS='|' read -r label a b <<< "$pair"
        [[ " $models " == *" $a "* && " $models " == *" $b "* ]] || continue
        table="$out/pairs/$metric-$b-minus-$a.md"
        "$python" tools/paired_stats.py "${reports[@]}" --a "$a" --b "$b" --metric "$metric" \
            --precision "$precision" --resamples "$resamples" > "$table.tmp"
        mv "$table.tmp" "$table"  # whole tables only: a failed run leaves none
        echo "claims_report: $table" >&2
    done
}
pair_tables psnr "${PSNR_PAIRS[@]}"
pair_tables edge_width "${EDGE_PAIRS[@]}"
pair_tables edge_slope "${EDGE_PAIRS[@]}"
for pair in "${PSNR_PAIRS[@]}"; do
    IFS='|' read -r label a b <<< "$pair"
    [[ " $models " == *" $a "* && " $models " == *" $b "* ]] && table_pairs+=(--pair "$label" "$a" "$b")
done
for pair in "${EDGE_PAIRS[@]}"; do
    IFS='|' read -r label a b <<< "$pair"
    [[ " $models " == *" $a "* && " $models " == *" $b "* ]] && table_pairs+=(--edge-pair "$label" "$a" "$b")
done
if [[ ${#table_pairs[@]} -eq 0 ]]; then
    echo "claims_report: no pair of the claims among MODELS ($models): reports only" >&2
    exit 0
fi
"$python" tools/claims_table.py "${reports[@]}" "${table_pairs[@]}" --precision "$precision" \
    --resamples "$resamples" --edge-scales "$edge_scales" -o "$out/claims.md" "${into[@]}"
