#!/usr/bin/env bash
# Incremental sync benchmarks (issue 12), run by `make bench` after
# bench/run.sh and alone by `make bench-sync`. Prints a Markdown table and
# writes it to $SCRATCH/sync/results.md (bench/NOTES.md records the numbers
# of a run and what they mean).
#
#   no-change: `runferry sync` of N generated W&B runs into the archive a
#     full `runferry copy` just wrote (same ledger), against that copy;
#     `runferry ls` of the runs likewise (light headers, the default) and
#     `ls --count` (every log read to count points). Target: the copy takes
#     >= 50x the no-change sync (and the ls).
#   grown: 1% of the runs gain 1% more history rows (their folders written
#     again with more rows; the first rows are the same), then a sync,
#     against the no-change sync plus a copy of just the new points (one
#     history row per grown run, written as a fresh folder of that many
#     runs into a fresh archive). Target: sync <= 3 x no-change + that copy.
#   mlflow: the same no-change and grown syncs into an MLflow server
#     (fresh, SQLite store, one worker: the flags internal/testenv uses;
#     started here, its process group stopped on exit) for
#     BENCH_SYNC_MLFLOW_RUNS runs (fewer than into Parquet: a full copy
#     into one server on 2 cores runs at a few thousand points/s), 1% of
#     them (at least one) grown by 1% more rows; the new points alone are
#     a copy of a folder of that many one-row runs into the same server.
#     The grown runs must be appended to (the same MLflow run ids).
#   mlflow source: an MLflow server as the SOURCE (issue 12's "ls of an
#     MLflow server with 87 runs took over 3 minutes"): BENCH_SYNC_MLFLOWSRC_RUNS
#     FINISHED runs (ROWS steps x 5 keys, 10 params, 5 tags, 4 files in 3
#     artifact directories each) written straight into a SQLite store and
#     its artifact root by bench/py/mlflow_src_store.py (MLflow's
#     SqlAlchemyStore), served by a server started as for the MLflow part;
#     a full copy into a fresh Parquet archive (once), then the no-change
#     sync and `ls` of the server, against that copy. Target as above (the
#     copy >= 50x the no-change sync). Then a file is added to one FINISHED
#     run and the next sync must copy that run alone.
#
# Knobs: RUNFERRY_BENCH_DIR, RUNFERRY_VENV (for mlflow; default .venv),
# BENCH_SYNC_ENTITY ("-entity bench-team"; empty: none), BENCH_SYNC_RUNS
# (10000), BENCH_SYNC_ROWS (100 history rows of 5 keys per run),
# BENCH_SYNC_MLFLOW_RUNS (100; 0 skips the MLflow part),
# BENCH_SYNC_MLFLOWSRC_RUNS (1000; 0 skips the MLflow-source part),
# BENCH_SYNC_MLFLOWSRC_BASE (a runferry binary of another build whose
# no-change sync from MLflow is timed interleaved with this build's; by
# hand, to compare builds), BENCH_REPEAT (3;
# medians). RUNFERRY_CPUPROFILE is passed through (runferry writes a CPU
# profile of each command to it: set it only to profile by hand).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRATCH=${RUNFERRY_BENCH_DIR:-${TMPDIR:-/tmp}/runferry-bench}/sync
RUNS=${BENCH_SYNC_RUNS:-10000}
ROWS=${BENCH_SYNC_ROWS:-100}
REPEAT=${BENCH_REPEAT:-3}
MRUNS=${BENCH_SYNC_MLFLOW_RUNS:-100}
SRUNS=${BENCH_SYNC_MLFLOWSRC_RUNS:-1000}
SBASE=${BENCH_SYNC_MLFLOWSRC_BASE:-}
VENV=${RUNFERRY_VENV:-$PWD/.venv}
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

# secs CMD...: runs CMD, prints its wall time in seconds; its CPU time
# (user + sys, through /usr/bin/time where there is one) is left for cpu.
# On a loaded machine the CPU time is the steadier measure of the work.
TIMECMD=()
[ -x /usr/bin/time ] && TIMECMD=(/usr/bin/time -f "%U %S" -o "$SCRATCH/last.cpu")
secs() {
	local t0 t1
	echo "- -" >"$SCRATCH/last.cpu"
	t0=$(date +%s.%N)
	"${TIMECMD[@]}" "$@" >"$SCRATCH/last.out" 2>&1 || { cat "$SCRATCH/last.out" >&2; log "failed: $*"; exit 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}
# cpu: the CPU seconds of the last secs ("-" when unknown)
cpu() { awk '{ if ($1 == "-") print "-"; else print $1 + $2 }' "$SCRATCH/last.cpu"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { echo "scale=1; $1 / $2" | bc; }
met() { if [ "$(echo "$1" | bc)" = 1 ]; then echo yes; else echo no; fi; } # met BC-CONDITION

SRC=$SCRATCH/src
log "generating $RUNS runs x $ROWS rows x 5 keys"
rm -rf "$SRC" "$SCRATCH/delta"
"$BIN/genwandb" -out "$SRC" -runs "$RUNS" -rows "$ROWS" -keys 5 -stats-every 0 -id s $ENTITY >/dev/null
# The new points alone: one folder of GROWN runs holding MORE rows each.
"$BIN/genwandb" -out "$SCRATCH/delta" -runs "$GROWN" -rows "$MORE" -keys 5 -stats-every 0 -id d $ENTITY >/dev/null

full=() nochange=() ls=() lscount=() delta=() fullcpu=() nochangecpu=() lscpu=() lscountcpu=()
for rep in $(seq "$REPEAT"); do
	rm -rf "$SCRATCH/a" "$SCRATCH/ledger.db" "$SCRATCH/d" "$SCRATCH/d.db"
	full+=("$(secs "$RF" copy "wandb:$SRC" "parquet:$SCRATCH/a" --state "$SCRATCH/ledger.db" -q)")
	fullcpu+=("$(cpu)")
	nochange+=("$(secs "$RF" sync "wandb:$SRC" "parquet:$SCRATCH/a" --state "$SCRATCH/ledger.db" -q)")
	nochangecpu+=("$(cpu)")
	grep -q "copied 0 runs" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the no-change sync copied something"; exit 1; }
	ls+=("$(secs "$RF" ls "wandb:$SRC")")
	lscpu+=("$(cpu)")
	lscount+=("$(secs "$RF" ls --count "wandb:$SRC")")
	lscountcpu+=("$(cpu)")
	delta+=("$(secs "$RF" copy "wandb:$SCRATCH/delta" "parquet:$SCRATCH/d" --state "$SCRATCH/d.db" -q)")
	log "rep $rep: full ${full[-1]} s, no-change ${nochange[-1]} s, ls ${ls[-1]} s, ls --count ${lscount[-1]} s, new points alone ${delta[-1]} s; CPU (user+sys): full ${fullcpu[-1]} s, no-change ${nochangecpu[-1]} s, ls ${lscpu[-1]} s, ls --count ${lscountcpu[-1]} s"
done
# grow DIR PREFIX COUNT: writes again every 100th of the first 100 x COUNT
# runs (ids PREFIX-00000, PREFIX-00100, ...) of DIR with MORE rows more
# (same seed: the first rows repeat).
grow() {
	local dir=$1 prefix=$2 count=$3 i n id
	for i in $(seq 0 $((count - 1))); do
		n=$((i * 100))
		id=$(printf '%s-%05d' "$prefix" "$n")
		rm -rf "$dir/wandb/run-"*"-$id"
		"$BIN/genwandb" -out "$dir" -rows $((ROWS + MORE)) -keys 5 -stats-every 0 -id "$id" -seed $((1 + n)) $ENTITY >/dev/null
	done
}
grow "$SRC" s "$GROWN"
grown=$(secs "$RF" sync "wandb:$SRC" "parquet:$SCRATCH/a" --state "$SCRATCH/ledger.db" -q)
grown_line=$(tail -1 "$SCRATCH/last.out")
log "grown sync $grown s: $grown_line"
"$RF" check "wandb:$SRC" "parquet:$SCRATCH/a" -q >/dev/null || { log "check failed after the grown sync"; exit 1; }

F=$(median "${full[@]}") N=$(median "${nochange[@]}") L=$(median "${ls[@]}") LC=$(median "${lscount[@]}") D=$(median "${delta[@]}")
budget=$(echo "3 * $N + $D" | bc)
# CPU medians ("-" without /usr/bin/time) and the ratio of CPU times
cpumed() { if [ "$1" = "-" ]; then echo "-"; else median "$@"; fi; }
cpuratio() { if [ "$1" = "-" ] || [ "$2" = "-" ]; then echo "-"; else echo "$(ratio "$1" "$2")x"; fi; }
FC=$(cpumed "${fullcpu[@]}") NC=$(cpumed "${nochangecpu[@]}") LCPU=$(cpumed "${lscpu[@]}") LCC=$(cpumed "${lscountcpu[@]}")

# --- into MLflow ---------------------------------------------------------
MLF_ROWS=""
if [ "$MRUNS" -gt 0 ]; then
	MGROWN=$((MRUNS / 100 > 0 ? MRUNS / 100 : 1))
	MLFLOW_BIN=$VENV/bin/mlflow
	[ -x "$MLFLOW_BIN" ] || { log "no mlflow in $VENV: run 'make venv' or set RUNFERRY_VENV (or BENCH_SYNC_MLFLOW_RUNS=0)"; exit 1; }
	MDIR=$SCRATCH/mlflow-server
	stop_mlflow() {
		local pid i
		pid=$(cat "$MDIR/pid" 2>/dev/null) || return 0
		kill -TERM -- "-$pid" 2>/dev/null || true
		for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		kill -KILL -- "-$pid" 2>/dev/null || true
		rm -f "$MDIR/pid"
	}
	trap stop_mlflow EXIT
	rm -rf "$MDIR" && mkdir -p "$MDIR"
	port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	(
		cd "$MDIR"
		export MLFLOW_TRACKING_URI= PYTHONUNBUFFERED=1 MLFLOW_ENABLE_TELEMETRY=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
		# setsid: the server and its workers form one process group, stopped together
		exec setsid "$MLFLOW_BIN" server --backend-store-uri "sqlite:///$MDIR/mlflow.db" \
			--artifacts-destination "$MDIR/artifacts" --serve-artifacts --host 127.0.0.1 --port "$port" \
			--workers 1 --allowed-hosts "127.0.0.1,127.0.0.1:$port,localhost,localhost:$port"
	) >"$MDIR/server.log" 2>&1 </dev/null &
	echo $! >"$MDIR/pid"
	URL=http://127.0.0.1:$port
	for i in $(seq 480); do
		curl -sf "$URL/health" >/dev/null 2>&1 && break
		kill -0 "$(cat "$MDIR/pid")" 2>/dev/null || { tail -20 "$MDIR/server.log" >&2; log "mlflow server died"; exit 1; }
		sleep 0.5
	done
	# MLflow 3.x starts a job runner and huey consumers (~20 CPU-seconds)
	# around the first /health: wait until the process group is idle.
	last=-1 quiet=0
	for i in $(seq 90); do
		now=$(ps -eo pgid=,cputimes= | awk -v g="$(cat "$MDIR/pid")" '$1 == g { s += $2 } END { print s + 0 }')
		if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; fi
		[ "$quiet" -ge 2 ] && break
		last=$now
		sleep 1
	done
	DST="mlflow+$URL"
	MSRC=$SCRATCH/msrc
	log "mlflow: generating $MRUNS runs x $ROWS rows x 5 keys (server $URL)"
	rm -rf "$MSRC" "$SCRATCH/mdelta" "$SCRATCH/m.db" "$SCRATCH/md.db"
	"$BIN/genwandb" -out "$MSRC" -runs "$MRUNS" -rows "$ROWS" -keys 5 -stats-every 0 -id m $ENTITY >/dev/null
	mfull=$(secs "$RF" copy "wandb:$MSRC" "$DST" --state "$SCRATCH/m.db" -q)
	mnochange=() mdelta=()
	for rep in $(seq "$REPEAT"); do
		mnochange+=("$(secs "$RF" sync "wandb:$MSRC" "$DST" --state "$SCRATCH/m.db" -q)")
		grep -q "copied 0 runs" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the no-change sync into MLflow copied something"; exit 1; }
		# The new points alone, into the same server: new runs each time
		# (ids md<rep>-...), in an experiment of their own.
		rm -rf "$SCRATCH/mdelta" "$SCRATCH/md.db"
		"$BIN/genwandb" -out "$SCRATCH/mdelta" -runs "$MGROWN" -rows "$MORE" -keys 5 -stats-every 0 -id "md$rep" -project runferry-bench-delta $ENTITY >/dev/null
		mdelta+=("$(secs "$RF" copy "wandb:$SCRATCH/mdelta" "$DST" --state "$SCRATCH/md.db" -q)")
		grep -q "copied $MGROWN runs" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the copy of the new points alone into MLflow did not copy $MGROWN runs"; exit 1; }
		log "mlflow rep $rep: no-change ${mnochange[-1]} s, new points alone ${mdelta[-1]} s (full copy $mfull s)"
	done
	# run_ids: the MLflow run ids the server holds, sorted (a run written
	# anew instead of appended to would get a new one).
	run_ids() { "$RF" ls --json --exclude '*delta*' "$DST" | "$VENV/bin/python" -c 'import json, sys; print("\n".join(sorted(r["origin"] for r in json.load(sys.stdin))))'; }
	ids_before=$(run_ids)
	grow "$MSRC" m "$MGROWN"
	mgrown=$(secs "$RF" sync "wandb:$MSRC" "$DST" --state "$SCRATCH/m.db" -q --report "$SCRATCH/m-grown.json")
	mgrown_line=$(tail -1 "$SCRATCH/last.out")
	log "mlflow grown sync $mgrown s: $mgrown_line"
	"$RF" check "wandb:$MSRC" "$DST" -q >/dev/null || { log "check failed after the grown sync into MLflow"; exit 1; }
	[ "$(run_ids)" = "$ids_before" ] || { log "the grown sync into MLflow changed run ids (wrote runs anew instead of appending)"; exit 1; }
	MN=$(median "${mnochange[@]}") MD=$(median "${mdelta[@]}")
	mbudget=$(echo "3 * $MN + $MD" | bc)
	MLF_ROWS=$(
		echo "| MLflow ($MRUNS runs x $ROWS rows x 5 keys; SQLite store, 1 worker): full copy (once) | $mfull | | | |"
		echo "| MLflow: no-change sync | $MN | copy / sync = $(ratio "$mfull" "$MN")x | | |"
		echo "| MLflow: copy of the new points alone ($MGROWN runs x $MORE rows) | $MD | | | |"
		echo "| MLflow: sync after $MGROWN runs grew by $MORE rows (once) | $mgrown | budget 3 x no-change + new points = $mbudget | <= budget | $(met "$mgrown <= $mbudget") |"
	)
	stop_mlflow
fi
# --- from an MLflow server (the MLflow-source part) ------------------------
MSRC_ROWS=""
if [ "$SRUNS" -gt 0 ]; then
	[ -x "$VENV/bin/mlflow" ] || { log "no mlflow in $VENV: run 'make venv' or set RUNFERRY_VENV (or BENCH_SYNC_MLFLOWSRC_RUNS=0)"; exit 1; }
	SDIR=$SCRATCH/mlflow-source
	stop_msrc() {
		local pid i
		pid=$(cat "$SDIR/pid" 2>/dev/null) || return 0
		kill -TERM -- "-$pid" 2>/dev/null || true
		for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		kill -KILL -- "-$pid" 2>/dev/null || true
		rm -f "$SDIR/pid"
	}
	trap 'stop_msrc; if declare -F stop_mlflow >/dev/null; then stop_mlflow; fi' EXIT
	rm -rf "$SDIR" && mkdir -p "$SDIR"
	log "mlflow source: writing $SRUNS runs x $ROWS steps x 5 keys and 4 files each into a store"
	MLFLOW_ENABLE_TELEMETRY=false "$VENV/bin/python" bench/py/mlflow_src_store.py "$SDIR/mlflow.db" "$SDIR/artifacts" "$SRUNS" 5 "$ROWS"
	sport=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	(
		cd "$SDIR"
		export MLFLOW_TRACKING_URI= PYTHONUNBUFFERED=1 MLFLOW_ENABLE_TELEMETRY=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
		exec setsid "$VENV/bin/mlflow" server --backend-store-uri "sqlite:///$SDIR/mlflow.db" \
			--artifacts-destination "$SDIR/artifacts" --serve-artifacts --host 127.0.0.1 --port "$sport" \
			--workers 1 --allowed-hosts "127.0.0.1,127.0.0.1:$sport,localhost,localhost:$sport"
	) >"$SDIR/server.log" 2>&1 </dev/null &
	echo $! >"$SDIR/pid"
	SURL=http://127.0.0.1:$sport
	for i in $(seq 480); do
		curl -sf "$SURL/health" >/dev/null 2>&1 && break
		kill -0 "$(cat "$SDIR/pid")" 2>/dev/null || { tail -20 "$SDIR/server.log" >&2; log "mlflow server died"; exit 1; }
		sleep 0.5
	done
	# Wait until the server's process group is idle (see the MLflow part).
	last=-1 quiet=0
	for i in $(seq 90); do
		now=$(ps -eo pgid=,cputimes= | awk -v g="$(cat "$SDIR/pid")" '$1 == g { s += $2 } END { print s + 0 }')
		if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; fi
		[ "$quiet" -ge 2 ] && break
		last=$now
		sleep 1
	done
	SSRC="mlflow+$SURL"
	rm -rf "$SCRATCH/sa" "$SCRATCH/s.db"
	sfull=$(secs "$RF" copy "$SSRC" "parquet:$SCRATCH/sa" --state "$SCRATCH/s.db" -q)
	sfullcpu=$(cpu)
	grep -q "copied $SRUNS runs" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the copy from MLflow did not copy $SRUNS runs"; exit 1; }
	snochange=() sls=() snochangecpu=() slscpu=() sbase=() sbasecpu=()
	for rep in $(seq "$REPEAT"); do
		snochange+=("$(secs "$RF" sync "$SSRC" "parquet:$SCRATCH/sa" --state "$SCRATCH/s.db" -q)")
		snochangecpu+=("$(cpu)")
		grep -q "copied 0 runs" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the no-change sync from MLflow copied something"; exit 1; }
		sls+=("$(secs "$RF" ls "$SSRC")")
		slscpu+=("$(cpu)")
		log "mlflow source rep $rep: no-change ${snochange[-1]} s, ls ${sls[-1]} s (full copy $sfull s); CPU: no-change ${snochangecpu[-1]} s, ls ${slscpu[-1]} s (full copy $sfullcpu s)"
		if [ -n "$SBASE" ]; then
			# The same no-change sync by another build, interleaved (its
			# own ledger copy: the ledgers are equal before each).
			cp "$SCRATCH/s.db" "$SCRATCH/s-base.db"
			sbase+=("$(secs "$SBASE" sync "$SSRC" "parquet:$SCRATCH/sa" --state "$SCRATCH/s-base.db" -q)")
			sbasecpu+=("$(cpu)")
			grep -q "copied 0 runs" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the base build's no-change sync from MLflow copied something"; exit 1; }
			log "mlflow source rep $rep: base build's no-change sync ${sbase[-1]} s, CPU ${sbasecpu[-1]} s"
		fi
	done
	# A file added to one FINISHED run (MLflow records nothing else on the
	# run): the next sync must see it and copy that run alone.
	one=$(find "$SDIR/artifacts" -mindepth 3 -maxdepth 3 -name artifacts | sort | head -1)
	mkdir -p "$one/late" && echo "logged after the run ended" >"$one/late/note.txt"
	"$RF" sync "$SSRC" "parquet:$SCRATCH/sa" --state "$SCRATCH/s.db" -q >"$SCRATCH/last.out" 2>&1 || { cat "$SCRATCH/last.out"; exit 1; }
	grep -Eq "copied 1 runs?([^0-9]|$)" "$SCRATCH/last.out" || { cat "$SCRATCH/last.out"; log "the sync after a file was added to a finished MLflow run did not copy that run alone"; exit 1; }
	"$RF" check "$SSRC" "parquet:$SCRATCH/sa" -q >/dev/null || { log "check failed after the sync from MLflow"; exit 1; }
	SN=$(median "${snochange[@]}") SL=$(median "${sls[@]}")
	SNC=$(cpumed "${snochangecpu[@]}") SLC=$(cpumed "${slscpu[@]}")
	MSRC_ROWS=$(
		echo "| from MLflow ($SRUNS runs x $ROWS rows x 5 keys, 4 files in 3 directories; SQLite store, 1 worker): full copy into Parquet (once) | $sfull | | | |"
		echo "| from MLflow: no-change sync | $SN | copy / sync = $(ratio "$sfull" "$SN")x | 50x | $(met "$sfull >= 50 * $SN") |"
		echo "| from MLflow: ls | $SL | copy / ls = $(ratio "$sfull" "$SL")x | 50x | $(met "$sfull >= 50 * $SL") |"
		echo "| from MLflow, CPU seconds of runferry (user+sys; the server's are not counted): full copy / no-change sync / ls | $sfullcpu / $SNC / $SLC | | | |"
		if [ -n "$SBASE" ]; then
			SB=$(median "${sbase[@]}")
			echo "| from MLflow: no-change sync by the base build ($SBASE), interleaved | $SB (CPU $(cpumed "${sbasecpu[@]}")) | base / this build = $(ratio "$SB" "$SN")x | | |"
		fi
	)
	stop_msrc
fi
{
	echo "| measurement ($RUNS runs x $ROWS rows x 5 keys, medians of $REPEAT) | seconds | ratio | target | met? |"
	echo "|---|---|---|---|---|"
	echo "| full copy into Parquet | $F | | | |"
	echo "| no-change sync | $N | copy / sync = $(ratio "$F" "$N")x | 50x | $(met "$F >= 50 * $N") |"
	echo "| ls (light headers, the default) | $L | copy / ls = $(ratio "$F" "$L")x | 50x | $(met "$F >= 50 * $L") |"
	echo "| ls --count (every log read) | $LC | copy / ls --count = $(ratio "$F" "$LC")x | | |"
	echo "| CPU seconds (user+sys): full copy / no-change sync / ls / ls --count | $FC / $NC / $LCPU / $LCC | copy / sync = $(cpuratio "$FC" "$NC"), copy / ls = $(cpuratio "$FC" "$LCPU") | | |"
	echo "| copy of the new points alone ($GROWN runs x $MORE rows) | $D | | | |"
	echo "| sync after $GROWN runs grew by $MORE rows (one run) | $grown | budget 3 x no-change + new points = $budget | <= budget | $(met "$grown <= $budget") |"
	[ -z "$MLF_ROWS" ] || echo "$MLF_ROWS"
	[ -z "$MSRC_ROWS" ] || echo "$MSRC_ROWS"
	echo
	echo "grown sync: $grown_line"
	[ -z "$MLF_ROWS" ] || echo "grown sync into MLflow: $mgrown_line"
} | tee "$SCRATCH/results.md"
