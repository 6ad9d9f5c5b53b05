# Shell helpers of the report scripts (sourced by tools/experiment_report.sh, tools/budget_report.sh and tools/recipe_control.sh).

finished() {  # RUN_DIR: whether the run has logged its last epoch (training.runlog.RunRecord.finished)
    [[ -f $1/config.yaml && -f $1/log.csv ]] && "${PYTHON:-.venv/bin/python}" -c \
        'import sys; from pathlib import Path; from liifsr.training.runlog import read_run; sys.exit(not read_run(Path(sys.argv[1])).finished)' "$1"
}

claim() {  # PATH: take PATH.lock for this lane, its descriptor in $lock (release: exec {lock}>&-); false if another lane holds it
    exec {lock}> "$1.lock"
    flock -n "$lock" || { exec {lock}>&-; return 1; }
}
