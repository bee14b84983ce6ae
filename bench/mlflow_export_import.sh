#!/usr/bin/env bash
# What users run today to copy MLflow experiments between servers
# (mlflow-export-import): export-experiment from SRC into DIR, then
# import-experiment from DIR into DST. Timed as one command by bench/run.sh;
# the two phases' seconds go to DIR.phases.json.
#
#   bash bench/mlflow_export_import.sh VENV SRC_URL DST_URL EXPERIMENT DIR
set -euo pipefail
venv=$1 src=$2 dst=$3 exp=$4 dir=$5
rm -rf "$dir"
t0=$(date +%s.%N)
MLFLOW_TRACKING_URI=$src "$venv/bin/export-experiment" --experiment "$exp" --output-dir "$dir" >"$dir.export.log" 2>&1 ||
	{ tail -20 "$dir.export.log" >&2; exit 1; }
t1=$(date +%s.%N)
MLFLOW_TRACKING_URI=$dst "$venv/bin/import-experiment" --experiment-name "$exp" --input-dir "$dir" >"$dir.import.log" 2>&1 ||
	{ tail -20 "$dir.import.log" >&2; exit 1; }
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "{\"export_s\": %.3f, \"import_s\": %.3f}\n", b - a, c - b }' >"$dir.phases.json"
