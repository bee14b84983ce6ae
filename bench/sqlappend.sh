#!/usr/bin/env bash
# The SQL sink's append from MLflow with held files checked by digest (f2,
# 91de305) against the same append re-sending every held file (the code
# before it), side by side in one job (docs/BENCHMARKS.md "SQL append: held
# files checked by digest (mend)").
#
# MLflow gives no digest of a file, so since 91de305 an append into SQL reads
# the body of every held file of the same size, hashes it through a
# temporary file (internal/hashspool) and keeps the held row when it is the
# same; before, it stored every file again. The dry run now reads those
# bodies too (before, it read none and counted them as to be sent).
#
# The run: a real `mlflow server` (project venv, SQLite store, its artifact
# proxy) holding one run with SMALL files of 4 KiB and LARGE files of
# LARGE_MIB MiB, synced once into SQLite; then one metric point is logged so
# that the run changed, and each side syncs it from a copy of the same
# database and ledger: `sync` (the append) and `sync --dry-run`. NEW is this
# tree's runferry, OLD a runferry built from a tree where 91de305 is
# reverted (OLD_TREE; the script builds both). Reports wall time and the
# CPU (user+sys) of runferry and of the MLflow server's processes, medians
# of REPEAT interleaved runs.
#
# Knobs: OLD_TREE (required), RUNFERRY_BENCH_DIR, RUNFERRY_VENV,
# BENCH_SQLAPPEND_SMALL (200), BENCH_SQLAPPEND_LARGE (3),
# BENCH_SQLAPPEND_LARGE_MIB (32), BENCH_REPEAT (3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SCRATCH=${RUNFERRY_BENCH_DIR:-${TMPDIR:-/tmp}/runferry-bench}/sqlappend
VENV=${RUNFERRY_VENV:-$ROOT/.venv}
SMALL=${BENCH_SQLAPPEND_SMALL:-200}
LARGE=${BENCH_SQLAPPEND_LARGE:-3}
LARGE_MIB=${BENCH_SQLAPPEND_LARGE_MIB:-32}
REPEAT=${BENCH_REPEAT:-3}
: "${OLD_TREE:?OLD_TREE: a tree of runferry with 91de305 reverted}"
log() { echo "bench-sqlappend: $*" >&2; }
rm -rf "$SCRATCH" && mkdir -p "$SCRATCH/bin"
CGO_ENABLED=0 go build -o "$SCRATCH/bin/new" ./cmd/runferry
(cd "$OLD_TREE" && CGO_ENABLED=0 go build -o "$SCRATCH/bin/old" ./cmd/runferry)

. bench/lib.sh
trap mlflow_server_stop EXIT
mlflow_server_start "$SCRATCH" "sqlite:///$SCRATCH/mlflow.db" "$SCRATCH/artifacts"
SERVER=$MLFLOW_PID URL=$MLFLOW_URL

# make: the run with its files; grow RUN: one more metric point.
cat >"$SCRATCH/run.py" <<'EOF'
import os, sys, tempfile
os.environ.update({"MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "true"})
from mlflow.tracking import MlflowClient
url, mode = sys.argv[1:3]
c = MlflowClient(url)
if mode == "make":
    small, large, mib = map(int, sys.argv[3:6])
    r = c.create_run(c.create_experiment("bench"), run_name="files")
    c.log_metric(r.info.run_id, "loss", 0.5, step=0, timestamp=1700000000000)
    d = tempfile.mkdtemp()
    for i in range(small):
        with open(os.path.join(d, "small-%04d.txt" % i), "wb") as f:
            f.write(os.urandom(4096))
    for i in range(large):
        with open(os.path.join(d, "large-%d.bin" % i), "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
    c.log_artifacts(r.info.run_id, d)
    print(r.info.run_id)
else:
    c.log_metric(sys.argv[3], "loss", 0.25, step=1, timestamp=1700000001000)
EOF
RUN=$(MLFLOW_TRACKING_URI= "$VENV/bin/python" "$SCRATCH/run.py" "$URL" make "$SMALL" "$LARGE" "$LARGE_MIB" | tail -1)
SRC="mlflow+$URL"
DST="sqlite:$SCRATCH/work.db"
"$SCRATCH/bin/new" sync "$SRC" "$DST" --state "$SCRATCH/ledger.db" -q >/dev/null
cp "$SCRATCH/work.db" "$SCRATCH/base.db" && cp "$SCRATCH/ledger.db" "$SCRATCH/base-ledger.db"
MLFLOW_TRACKING_URI= "$VENV/bin/python" "$SCRATCH/run.py" "$URL" grow "$RUN"

# server_cpu: CPU seconds (user+sys) of every process of the server's session.
server_cpu() {
	local tick s=0 pid
	tick=$(getconf CLK_TCK)
	for pid in $(ps -s "$SERVER" -o pid=); do
		[ -r "/proc/$pid/stat" ] || continue
		s=$((s + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
	done
	echo "scale=2; $s / $tick" | bc
}
declare -A wall cpu srv
# one SIDE MODE: restore the database and ledger, run the sync, record.
one() {
	local side=$1 mode=$2 extra=() t0 t1 s0 s1
	[ "$mode" = dry ] && extra=(--dry-run)
	cp "$SCRATCH/base.db" "$SCRATCH/work.db" && cp "$SCRATCH/base-ledger.db" "$SCRATCH/ledger.db"
	sync
	s0=$(server_cpu)
	t0=$(date +%s.%N)
	/usr/bin/time -f "%U %S" -o "$SCRATCH/time" "$SCRATCH/bin/$side" sync "$SRC" "$DST" --state "$SCRATCH/ledger.db" \
		--report "$SCRATCH/report-$side-$mode.json" "${extra[@]}" >"$SCRATCH/out-$side-$mode" 2>&1 ||
		{ cat "$SCRATCH/out-$side-$mode" >&2; log "failed: $side $mode"; exit 1; }
	t1=$(date +%s.%N)
	s1=$(server_cpu)
	wall[$side-$mode]+="$(echo "$t1 - $t0" | bc) "
	cpu[$side-$mode]+="$(awk '{print $1 + $2}' "$SCRATCH/time") "
	srv[$side-$mode]+="$(echo "$s1 - $s0" | bc) "
}
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
log "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for rep in $(seq "$REPEAT"); do
	if [ $((rep % 2)) = 1 ]; then order="new old"; else order="old new"; fi
	for mode in append dry; do
		for side in $order; do one "$side" "$mode"; done
	done
	log "rep $rep done, load $(cut -d' ' -f1-3 /proc/loadavg)"
done
log "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| $SMALL x 4 KiB + $LARGE x $LARGE_MIB MiB held, $REPEAT runs, medians | check by digest (new) | re-send (old) | new / old |"
echo "|---|---|---|---|"
for mode in append dry; do
	for m in wall cpu srv; do
		declare -n a=$m
		n=$(median "${a[new-$mode]}") o=$(median "${a[old-$mode]}")
		printf '| %s: %s (s) | %.2f | %.2f | %.2fx |\n' "$mode" "$m" "$n" "$o" "$(echo "scale=4; $n / $o" | bc)"
	done
	for side in new old; do
		log "$side $mode: walls ${wall[$side-$mode]}cpu ${cpu[$side-$mode]}server ${srv[$side-$mode]}; report: $(jq -c '[.runs[] | {appended, files, bytes, kept_files, kept_bytes}]' "$SCRATCH/report-$side-$mode.json")"
	done
done
