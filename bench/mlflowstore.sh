#!/usr/bin/env bash
# MLflow's SQL store read directly (mlflow+sqlite:, issue 14) against the same
# runs read through a real MLflow server serving that store (mlflow+http://,
# runferry's REST source), side by side in one job. Run by `make bench` and
# alone by `make bench-mlflowstore`. Prints a Markdown table and writes it to
# $SCRATCH/mlflowstore/results.md (docs/BENCHMARKS.md records a run).
#
#   read: `runferry ls --count` of the store, which lists every run and streams every
#     metric point to count them, direct against through the server.
#     Target: the server takes >= 10x as long.
#   copy: `runferry copy` of the store into a fresh Parquet archive, direct
#     against through the server (the same archive writer on both sides);
#     `runferry check` then proves the two archives equal, run for run.
#
# The store: bench/py/mlflow_store.py (MLflow's SqlAlchemyStore) makes RUNS
# runs of KEYS keys x STEPS steps. The server: `mlflow server` with its
# defaults over that store. Knobs: RUNFERRY_BENCH_DIR, RUNFERRY_VENV,
# BENCH_STORE_RUNS (20), BENCH_STORE_KEYS (20), BENCH_STORE_STEPS (500),
# BENCH_REPEAT (3; medians).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SCRATCH=${RUNFERRY_BENCH_DIR:-${TMPDIR:-/tmp}/runferry-bench}/mlflowstore
VENV=${RUNFERRY_VENV:-$ROOT/.venv}
RUNS=${BENCH_STORE_RUNS:-20}
KEYS=${BENCH_STORE_KEYS:-20}
STEPS=${BENCH_STORE_STEPS:-500}
REPEAT=${BENCH_REPEAT:-3}
BIN=$SCRATCH/bin
log() { echo "bench-mlflowstore: $*" >&2; }
mkdir -p "$SCRATCH"
CGO_ENABLED=0 go build -o "$BIN/" ./cmd/runferry
RF=$BIN/runferry

secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >"$SCRATCH/last.out" 2>&1 || { cat "$SCRATCH/last.out" >&2; log "failed: $*"; exit 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { echo "scale=1; $1 / $2" | bc; }

DB=$SCRATCH/store-$RUNS-$KEYS-$STEPS.db
if [ ! -s "$DB" ]; then
	log "making the store: $RUNS runs x $KEYS keys x $STEPS steps"
	rm -f "$DB.tmp"
	MLFLOW_ENABLE_TELEMETRY=false "$VENV/bin/python" bench/py/mlflow_store.py "$DB.tmp" "$SCRATCH/artifacts" "$RUNS" "$KEYS" "$STEPS"
	mv "$DB.tmp" "$DB"
fi

. bench/lib.sh
trap mlflow_server_stop EXIT
mlflow_server_start "$SCRATCH" "sqlite:///$DB" "$SCRATCH/artifacts"

STORE="mlflow+sqlite:$DB?instance=${MLFLOW_URL#http://}"
SERVED="mlflow+$MLFLOW_URL"
read_d=() read_s=() copy_d=() copy_s=()
for rep in $(seq "$REPEAT"); do
	read_d+=("$(secs "$RF" ls --count "$STORE")")
	read_s+=("$(secs "$RF" ls --count "$SERVED")")
	rm -rf "$SCRATCH/a" "$SCRATCH/b"
	copy_d+=("$(secs "$RF" copy "$STORE" "parquet:$SCRATCH/a" --no-state -q)")
	copy_s+=("$(secs "$RF" copy "$SERVED" "parquet:$SCRATCH/b" --no-state -q)")
	log "rep $rep: read direct ${read_d[-1]} s, through the server ${read_s[-1]} s; copy direct ${copy_d[-1]} s, through the server ${copy_s[-1]} s"
done
"$RF" check "parquet:$SCRATCH/a" "parquet:$SCRATCH/b" >"$SCRATCH/check.out" || { cat "$SCRATCH/check.out" >&2; log "the two archives differ"; exit 1; }
log "$(tail -1 "$SCRATCH/check.out")"

r2() { printf '%.2f' "$1"; }
RD=$(r2 "$(median "${read_d[@]}")") RS=$(r2 "$(median "${read_s[@]}")") CD=$(r2 "$(median "${copy_d[@]}")") CS=$(r2 "$(median "${copy_s[@]}")")
RR=$(ratio "$RS" "$RD") CR=$(ratio "$CS" "$CD")
met=no
[ "$(echo "$RR >= 10" | bc)" = 1 ] && met=yes
POINTS=$((RUNS * KEYS * STEPS))
{
	echo "| measurement ($RUNS runs x $KEYS keys x $STEPS steps, $POINTS points; median of $REPEAT) | direct (mlflow+sqlite:) | through the server (mlflow+http://) | ratio | target | met? |"
	echo "|---|---|---|---|---|---|"
	echo "| read: \`runferry ls --count\` (every point streamed) | $RD s | $RS s | ${RR}x | 10x | $met |"
	echo "| copy into a Parquet archive | $CD s | $CS s | ${CR}x | | |"
} | tee "$SCRATCH/results.md"
