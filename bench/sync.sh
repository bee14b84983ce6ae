#!/usr/bin/env bash
# Incremental sync benchmarks (issue 12), run by `make bench` after
# bench/run.sh and alone by `make bench-sync`. Prints a Markdown table and
# writes it to $SCRATCH/sync/results.md (bench/NOTES.md records the numbers
# of a run and what they mean).
#
#   no-change: `runferry sync` of N generated W&B runs into the archive a
#     full `runferry copy` just wrote (same ledger), against that copy;
#     `runferry ls` of the runs likewise. Target: the copy takes >= 50x the
#     no-change sync (and the ls).
#   grown: 1% of the runs gain 1% more history rows (their folders written
#     again with more rows; the first rows are the same), then a sync,
#     against the no-change sync plus a copy of just the new points (one
#     history row per grown run, written as a fresh folder of that many
#     runs into a fresh archive). Target: sync <= 3 x no-change + that copy.
#   (The same into MLflow is not measured yet.)
#
# Knobs: RUNFERRY_BENCH_DIR, BENCH_SYNC_ENTITY ("-entity bench-team"; empty: none), BENCH_SYNC_RUNS (10000), BENCH_SYNC_ROWS (100
# history rows of 5 keys per run), BENCH_REPEAT (3; medians).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRATCH=${RUNFERRY_BENCH_DIR:-${TMPDIR:-/tmp}/runferry-bench}/sync
RUNS=${BENCH_SYNC_RUNS:-10000}
ROWS=${BENCH_SYNC_ROWS:-100}
REPEAT=${BENCH_REPEAT:-3}
GROWN=$((RUNS / 100))
MORE=$((ROWS / 100 > 0 ? ROWS / 100 : 1))
# With an entity the runs' origins are entity/project/id; without one (as
# offline runs often are) they are the folder's path, and an earlier
# version's origin is a former origin of each run (see the notes).
ENTITY=${BENCH_SYNC_ENTITY-"-entity bench-team"}
BIN=$SCRATCH/bin
log() { echo "bench-sync: $*" >&2; }
mkdir -p "$SCRATCH"
CGO_ENABLED=0 go build -o "$BIN/" ./cmd/runferry ./bench/genwandb
RF=$BIN/runferry

# secs CMD...: runs CMD, prints its wall time in seconds
secs() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >"$SCRATCH/last.out" 2>&1 || { cat "$SCRATCH/last.out" >&2; log "failed: $*"; exit 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { echo "scale=1; $1 / $2" | bc; }
met() { if [ "$(echo "$1" | bc)" = 1 ]; then echo yes; else echo no; fi; } # met BC-CONDITION

SRC=$SCRATCH/src
log "generating $RUNS runs x $ROWS rows x 5 keys"
rm -rf "$SRC" "$SCRATCH/delta"
"$BIN/genwandb" -out "$SRC" -runs "$RUNS" -rows "$ROWS" -keys 5 -stats-every 0 -id s $ENTITY >/dev/null
# The new points alone: one folder of GROWN runs holding MORE rows each.
"$BIN/genwandb" -out "$SCRATCH/delta" -runs "$GROWN" -rows "$MORE" -keys 5 -stats-every 0 -id d $ENTITY >/dev/null

full=() nochange=() ls=() delta=()
for rep in $(seq "$REPEAT"); do
	rm -rf "$SCRATCH/a" "$SCRATCH/ledger.db" "$SCRATCH/d" "$SCRATCH/d.db"
	full+=("$(secs "$RF" copy "wandb:$SRC" "parquet:$SCRATCH/a" --state "$SCRATCH/ledger.db" -q)")
	nochange+=("$(secs "$RF" sync "wandb:$SRC" "parquet:$SCRATCH/a" --state "$SCRATCH/ledger.db" -q)")
	grep -q "copied 0 runs" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the no-change sync copied something"; exit 1; }
	ls+=("$(secs "$RF" ls "wandb:$SRC")")
	delta+=("$(secs "$RF" copy "wandb:$SCRATCH/delta" "parquet:$SCRATCH/d" --state "$SCRATCH/d.db" -q)")
	log "rep $rep: full ${full[-1]} s, no-change ${nochange[-1]} s, ls ${ls[-1]} s, new points alone ${delta[-1]} s"
done
# Grow 1% of the runs by 1% more rows (same seed: the first rows repeat).
for i in $(seq 0 $((GROWN - 1))); do
	n=$((i * 100))
	id=$(printf 's-%05d' "$n")
	rm -rf "$SRC/wandb/run-"*"-$id"
	"$BIN/genwandb" -out "$SRC" -rows $((ROWS + MORE)) -keys 5 -stats-every 0 -id "$id" -seed $((1 + n)) $ENTITY >/dev/null
done
grown=$(secs "$RF" sync "wandb:$SRC" "parquet:$SCRATCH/a" --state "$SCRATCH/ledger.db" -q)
grown_line=$(tail -1 "$SCRATCH/last.out")
log "grown sync $grown s: $grown_line"
"$RF" check "wandb:$SRC" "parquet:$SCRATCH/a" -q >/dev/null || { log "check failed after the grown sync"; exit 1; }

F=$(median "${full[@]}") N=$(median "${nochange[@]}") L=$(median "${ls[@]}") D=$(median "${delta[@]}")
budget=$(echo "3 * $N + $D" | bc)
{
	echo "| measurement ($RUNS runs x $ROWS rows x 5 keys, medians of $REPEAT) | seconds | ratio | target | met? |"
	echo "|---|---|---|---|---|"
	echo "| full copy into Parquet | $F | | | |"
	echo "| no-change sync | $N | copy / sync = $(ratio "$F" "$N")x | 50x | $(met "$F >= 50 * $N") |"
	echo "| ls | $L | copy / ls = $(ratio "$F" "$L")x | 50x | $(met "$F >= 50 * $L") |"
	echo "| copy of the new points alone ($GROWN runs x $MORE rows) | $D | | | |"
	echo "| sync after $GROWN runs grew by $MORE rows (one run) | $grown | budget 3 x no-change + new points = $budget | <= budget | $(met "$grown <= $budget") |"
	echo
	echo "grown sync: $grown_line"
} | tee "$SCRATCH/results.md"
