# The MLflow section of bench/run.sh (sourced by it: uses its variables and
# its die, log, measure and INPUT_CMDS). Every measurement gets a fresh
# `mlflow server` (proxied artifacts; a SQLite store and one worker, the
# flags internal/testenv uses, or a PostgreSQL store and several workers:
# see BENCH_MLFLOW_STORES below), stopped (its whole process group) right
# after, so that every side starts from an empty database.
#
#   mlflow-ceiling: bench/mlflowceiling (bare log-batch loop; the best of
#     batch sizes x concurrencies, re-measured for BENCH_CEILING_CONFIRM
#     seconds: the sustained ceiling) against `runferry copy
#     parquet:ARCHIVE mlflow+http://...` of BENCH_MLFLOW_RUNS runs.
#   mlflow-mlflow: `runferry copy mlflow+SRC mlflow+DST` against
#     mlflow-export-import's export-experiment then import-experiment, from
#     one source server filled once by bench/py/mlflow_populate.py.
#
# Both run for each store in BENCH_MLFLOW_STORES (default "sqlite
# postgres"): sqlite is SQLite-backed servers with one worker; postgres
# records mlflow-ceiling-pg and mlflow-mlflow-pg on servers with a
# PostgreSQL backend store (one cluster started for the section, a fresh
# database per server) and BENCH_MLFLOW_PG_WORKERS (default 4) workers: the
# shape of a production deployment.

MLFLOW_BIN=$VENV/bin/mlflow
[ -x "$MLFLOW_BIN" ] || die "no mlflow in $VENV: run 'make venv'"
[ -x "$VENV/bin/export-experiment" ] && "$PY" -c 'import mlflow_export_import.common.utils' 2>/dev/null ||
	die "$VENV lacks mlflow-export-import (or its tabulate): run 'make venv'"

MLF=$SCRATCH/mlflow
MLF_RUNS=${BENCH_MLFLOW_RUNS:-20}
MLF_ROWS=${BENCH_MLFLOW_ROWS:-1250}
SRC_RUNS=${BENCH_MLFLOW_SRC_RUNS:-10}
SRC_STEPS=${BENCH_MLFLOW_SRC_STEPS:-1000}
CEIL_S=${BENCH_CEILING_SECONDS:-3}
CEIL_CONFIRM=${BENCH_CEILING_CONFIRM:-30}
STORES=${BENCH_MLFLOW_STORES:-sqlite postgres}
for s in $STORES; do
	case $s in sqlite | postgres) ;; *) die "BENCH_MLFLOW_STORES: unknown store $s (want sqlite, postgres)" ;; esac
done
PG_WORKERS=${BENCH_MLFLOW_PG_WORKERS:-4}
STORE=sqlite # the backend store of the servers start_mlflow starts: sqlite or postgres
mkdir -p "$MLF"

MLFLOW_DIRS=() # servers started and not yet stopped
MLFLOW_URL=""

# start_mlflow DIR: starts a fresh server storing into DIR (emptied first),
# waits for /health and sets MLFLOW_URL.
start_mlflow() {
	local dir=$1 port attempt i
	rm -rf "$dir"
	mkdir -p "$dir"
	for attempt in 1 2 3; do
		port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		local store="sqlite:///$dir/mlflow.db" workers=1
		if [ "$STORE" = postgres ]; then
			store=$(pg_database "$(basename "$dir")") workers=$PG_WORKERS
		fi
		(
			cd "$dir"
			export MLFLOW_TRACKING_URI= PYTHONUNBUFFERED=1 MLFLOW_ENABLE_TELEMETRY=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
			# setsid: the server and its workers form one process group, stopped together
			exec setsid "$MLFLOW_BIN" server --backend-store-uri "$store" \
				--artifacts-destination "$dir/artifacts" --serve-artifacts --host 127.0.0.1 --port "$port" \
				--workers "$workers" --allowed-hosts "127.0.0.1,127.0.0.1:$port,localhost,localhost:$port"
		) >"$dir/server.log" 2>&1 </dev/null &
		echo $! >"$dir/pid"
		MLFLOW_DIRS+=("$dir")
		for i in $(seq 480); do
			if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
				MLFLOW_URL="http://127.0.0.1:$port"
				settle_mlflow "$(cat "$dir/pid")"
				return 0
			fi
			kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
			sleep 0.5
		done
		stop_mlflow "$dir" keep
		grep -q "address already in use" "$dir/server.log" || break
	done
	tail -20 "$dir/server.log" >&2
	die "mlflow server in $dir did not become healthy"
}

# settle_mlflow PGID: MLflow 3.x starts its job runner and eight huey
# consumers (about 20 CPU-seconds of Python imports) around the time /health
# first answers; wait until the server's process group has used no CPU for
# two seconds (at most 90 s) so that they do not run during a measurement.
settle_mlflow() {
	local pgid=$1 last=-1 now quiet=0 i
	for i in $(seq 90); do
		now=$(ps -eo pgid=,cputimes= | awk -v g="$pgid" '$1 == g { s += $2 } END { print s + 0 }')
		if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); else quiet=0; fi
		[ "$quiet" -ge 2 ] && return 0
		last=$now
		sleep 1
	done
}

# stop_mlflow DIR [keep]: stops the server's process group; removes DIR
# unless keep.
stop_mlflow() {
	local dir=$1 pid i
	pid=$(cat "$dir/pid" 2>/dev/null) || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$dir/pid"
	local rest=()
	for d in "${MLFLOW_DIRS[@]}"; do [ "$d" = "$dir" ] || rest+=("$d"); done
	MLFLOW_DIRS=("${rest[@]+"${rest[@]}"}")
	[ "${2:-}" = keep ] || rm -rf "$dir"
}
stop_all_mlflow() {
	local d
	for d in "${MLFLOW_DIRS[@]+"${MLFLOW_DIRS[@]}"}"; do stop_mlflow "$d" keep; done
	pg_stop
}
trap stop_all_mlflow EXIT

# --- PostgreSQL: one cluster for the section, a fresh database per server ---
PGDIR=$MLF/pg
PGPORT=""
pg_run() { # runs a command as the cluster's owner ("postgres" when we are root: initdb refuses root)
	if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
# pg_find sets PGBIN to the server's own bin folder (PATH may hold only
# symlinks to some tools) and checks that the cluster's owner can write
# PGDIR's parent, before anything is measured.
pg_find() {
	local bin
	bin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")")
	[ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/psql" ] ||
		die "the postgres store needs PostgreSQL's initdb, pg_ctl and psql (apt-get install postgresql), or BENCH_MLFLOW_STORES=sqlite"
	PGBIN=$bin
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root, the postgres store needs the user postgres (initdb refuses root)"
		mkdir -p "$PGDIR" && chown postgres "$PGDIR"
		pg_run "test -w '$PGDIR'" || die "the user postgres cannot write $PGDIR: choose a RUNFERRY_BENCH_DIR it can reach"
	fi
}
pg_start() {
	# a cluster left running by a killed earlier run
	[ -f "$PGDIR/data/postmaster.pid" ] && pg_run "'$PGBIN/pg_ctl' -D '$PGDIR/data' -m immediate stop >/dev/null 2>&1" || true
	rm -rf "$PGDIR"
	mkdir -p "$PGDIR"
	[ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
	PGPORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	pg_run "'$PGBIN/initdb' -D '$PGDIR/data' -A trust -U postgres >'$PGDIR/initdb.log' 2>&1" || die "initdb failed: see $PGDIR/initdb.log"
	# TCP on loopback only; no Unix socket (a long scratch path would not fit one)
	pg_run "'$PGBIN/pg_ctl' -D '$PGDIR/data' -l '$PGDIR/pg.log' -w -o \"-p $PGPORT -c unix_socket_directories='' -c listen_addresses=127.0.0.1\" start >/dev/null" ||
		die "PostgreSQL did not start: see $PGDIR/pg.log"
}
pg_stop() {
	[ -n "$PGPORT" ] || return 0
	pg_run "'$PGBIN/pg_ctl' -D '$PGDIR/data' -m fast stop >/dev/null 2>&1" || true
	PGPORT=""
}
# pg_database NAME: (re)creates database NAME and prints its SQLAlchemy URI.
pg_database() {
	pg_run "'$PGBIN/psql' -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PGPORT -U postgres -c 'DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)' -c 'CREATE DATABASE \"$1\"'" >"$MLF/psql.log" 2>&1 ||
		{ cat "$MLF/psql.log" >&2; die "creating database $1 failed"; }
	echo "postgresql+psycopg2://postgres@127.0.0.1:$PGPORT/$1"
}
case " $STORES " in *" postgres "*) pg_find ;; esac

# --- inputs: W&B runs -> a Parquet archive (not timed) -----------------------
WRUNS=$MLF/wandb-${MLF_RUNS}x${MLF_ROWS}
ARCH=$MLF/archive-${MLF_RUNS}x${MLF_ROWS}
stamp="runs $MLF_RUNS rows $MLF_ROWS keys 20 stats-every 100 $GEN_HASH $(git rev-parse HEAD)"
INPUT_CMDS+=("for i in 1..$MLF_RUNS: genwandb -out $WRUNS -id runNN -rows $MLF_ROWS -keys 20 -stats-every 100 -seed i")
INPUT_CMDS+=("runferry copy wandb:$WRUNS/wandb parquet:$ARCH --no-state -q")
if [ -f "$ARCH.stamp" ] && [ "$(cat "$ARCH.stamp")" = "$stamp" ]; then
	log "reusing $ARCH"
else
	log "generating $MLF_RUNS W&B runs of $MLF_ROWS rows and archiving them into $ARCH"
	rm -rf "$WRUNS" "$ARCH" "$ARCH.stamp"
	for i in $(seq "$MLF_RUNS"); do
		"$BIN/genwandb" -out "$WRUNS" -id "$(printf 'run%02d' "$i")" -rows "$MLF_ROWS" -keys 20 -stats-every 100 -seed "$i" >/dev/null
	done
	"$BIN/runferry" copy "wandb:$WRUNS/wandb" "parquet:$ARCH" --no-state -q >&2
	echo "$stamp" >"$ARCH.stamp"
fi
ARCH_POINTS=$("$PY" bench/py/parquet_points.py "$ARCH" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["points"])')
log "archive $ARCH holds $ARCH_POINTS points"

INPUT_CMDS+=("python bench/py/mlflow_populate.py SRC_URL bench $SRC_RUNS $SRC_STEPS   # into a fresh server of each store")

# compare_mlflow SUFFIX: both comparisons on servers of the current STORE,
# recorded as mlflow-ceiling$SUFFIX and mlflow-mlflow$SUFFIX.
compare_mlflow() {
	SUFFIX=$1
	# --- runferry into MLflow against the server's ceiling ----------------------
	SRV=$MLF/server
	for rep in $(seq "$REPEAT"); do
		theirs() {
			start_mlflow "$SRV"
			measure "mlflow-ceiling$SUFFIX" ceiling "$rep" -- "$BIN/mlflowceiling" -url "$MLFLOW_URL" -seconds "$CEIL_S" -confirm "$CEIL_CONFIRM"
			stop_mlflow "$SRV"
		}
		ours() {
			start_mlflow "$SRV"
			measure "mlflow-ceiling$SUFFIX" runferry-copy "$rep" \
				--verify "$PY" bench/py/mlflow_points.py "$MLFLOW_URL" --expect-points "$ARCH_POINTS" -- \
				"$BIN/runferry" copy "parquet:$ARCH" "mlflow+$MLFLOW_URL" --no-state -q
			stop_mlflow "$SRV"
		}
		if ((rep % 2)); then theirs; ours; else ours; theirs; fi
	done

	# --- MLflow to MLflow against mlflow-export-import ---------------------------
	SRCDIR=$MLF/source
	start_mlflow "$SRCDIR"
	SRC_URL=$MLFLOW_URL
	log "filling the $STORE source server with $SRC_RUNS runs x $SRC_STEPS steps x 20 keys"
	"$PY" bench/py/mlflow_populate.py "$SRC_URL" bench "$SRC_RUNS" "$SRC_STEPS" >"$MLF/populate.json" 2>"$MLF/populate.log" ||
		{ tail -20 "$MLF/populate.log" >&2; die "filling the source server failed"; }
	# MLflow's client prints "View run" lines before the JSON
	SRC_POINTS=$("$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["points"])' "$MLF/populate.json")
	DST=$MLF/dest
	EXPORT=$MLF/export
	for rep in $(seq "$REPEAT"); do
		theirs() {
			start_mlflow "$DST"
			measure "mlflow-mlflow$SUFFIX" export-import "$rep" \
				--verify "$PY" bench/py/mlflow_points.py "$MLFLOW_URL" --expect-points "$SRC_POINTS" --merge "$EXPORT.phases.json" -- \
				bash bench/mlflow_export_import.sh "$VENV" "$SRC_URL" "$MLFLOW_URL" bench "$EXPORT"
			stop_mlflow "$DST"
			rm -rf "$EXPORT"
		}
		ours() {
			start_mlflow "$DST"
			measure "mlflow-mlflow$SUFFIX" runferry-copy "$rep" \
				--verify "$PY" bench/py/mlflow_points.py "$MLFLOW_URL" --expect-points "$SRC_POINTS" -- \
				"$BIN/runferry" copy "mlflow+$SRC_URL" "mlflow+$MLFLOW_URL" --no-state -q
			stop_mlflow "$DST"
		}
		if ((rep % 2)); then theirs; ours; else ours; theirs; fi
	done
	stop_mlflow "$SRCDIR"
}

for STORE in $STORES; do
	case $STORE in
	sqlite) compare_mlflow "" ;;
	postgres)
		pg_start
		log "PostgreSQL backend store on 127.0.0.1:$PGPORT, $PG_WORKERS workers per server"
		compare_mlflow -pg
		pg_stop
		;;
	*) die "BENCH_MLFLOW_STORES: unknown store $STORE (want sqlite, postgres)" ;;
	esac
done
