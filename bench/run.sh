#!/usr/bin/env bash
# Side-by-side benchmarks of runferry against what users would run instead,
# written to docs/BENCHMARKS.md. Run by `make bench` (after the Go
# microbenchmarks) and `make bench-large`.
#
#   bash bench/run.sh            everything (about 15 minutes on 2 cores, plus
#                                ~40 for the MLflow section)
#   BENCH_LARGE=1 bash bench/run.sh   also archive a 100M-point run (peak RSS)
#
# Environment: RUNFERRY_BENCH_DIR (scratch folder, default
# $TMPDIR/runferry-bench; inputs are generated once and reused),
# RUNFERRY_VENV (default .venv), BENCH_REPEAT (default 3),
# BENCH_WANDB_ROWS (default 1000000), BENCH_E2E_ROWS (default 200000),
# BENCH_PARQUET_ROWS (default 50000000), BENCH_OUT (default
# docs/BENCHMARKS.md), BENCH_TB_STEPS (default 12500 steps of 20 keys:
# 250k points for the EventAccumulator comparison; the memory check reads
# ten times as many).
#
# RUNFERRY_BENCH_ONLY=mlflow runs only the MLflow section, =mlflowfile only
# the MLflow file store one (bench/mlflowfile.sh, knobs there),
# =tensorboard only the TensorBoard one, =wandbcloud only the
# W&B cloud one (bench/wandbcloud.sh, knobs there; RUNFERRY_BENCH_ONLY=
# default runs only the others); the rows of the sections not run are kept
# from the scratch folder's previous results.jsonl. MLflow section knobs:
# BENCH_MLFLOW_RUNS (default 20) x BENCH_MLFLOW_ROWS (default 1250 history
# rows of 20 keys, ~25k points per run) for the ceiling comparison,
# BENCH_MLFLOW_SRC_RUNS (default 10) x BENCH_MLFLOW_SRC_STEPS (default 1000
# steps of 20 keys, 20k points per run) for MLflow -> MLflow,
# BENCH_CEILING_SECONDS (default 3 per grid point),
# BENCH_CEILING_CONFIRM (default 30: the best grid point re-measured, the
# sustained ceiling), BENCH_MLFLOW_STORES (default "sqlite postgres": the
# postgres store starts a PostgreSQL cluster, as the user postgres when run
# as root, and needs initdb, pg_ctl and psql) and BENCH_MLFLOW_PG_WORKERS
# (default 4).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SCRATCH=${RUNFERRY_BENCH_DIR:-${TMPDIR:-/tmp}/runferry-bench}
VENV=${RUNFERRY_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
REPEAT=${BENCH_REPEAT:-3}
WANDB_ROWS=${BENCH_WANDB_ROWS:-1000000}
E2E_ROWS=${BENCH_E2E_ROWS:-200000}
PARQUET_ROWS=${BENCH_PARQUET_ROWS:-50000000}
LARGE_ROWS=${BENCH_LARGE_ROWS:-5000000}   # x 20 keys = 100M points
OUT=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
TIME=/usr/bin/time
ONLY=${RUNFERRY_BENCH_ONLY:-}
case "$ONLY" in "" | mlflow | mlflowfile | wandbcloud | tensorboard | default) ;; *) echo "bench: RUNFERRY_BENCH_ONLY=$ONLY: want mlflow, mlflowfile, tensorboard, wandbcloud or default" >&2; exit 2 ;; esac
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; } # want default|mlflow|mlflowfile|tensorboard|wandbcloud

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# --- what the benchmarks need -------------------------------------------
if ! "$TIME" -f '%M' true >/dev/null 2>&1; then
	if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
		log "installing GNU time (apt-get install time)"
		apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; } ||
			die "could not install GNU time; install the 'time' package (needs /usr/bin/time -v)"
	else
		die "GNU time is missing: install the 'time' package (apt-get install time) so /usr/bin/time exists"
	fi
fi
[ -x "$PY" ] || die "no Python venv at $VENV: run 'make venv' first"
"$PY" -c 'import wandb.proto.wandb_internal_pb2, pyarrow, pandas, numpy' 2>/dev/null ||
	die "$VENV lacks wandb, pyarrow, pandas or numpy: run 'make venv'"
command -v go >/dev/null || die "go is not on PATH"

mkdir -p "$SCRATCH"
BIN=$SCRATCH/bin
RESULTS=$SCRATCH/results.jsonl
FACTS=$SCRATCH/facts.json
KEPT=""
if [ -n "$ONLY" ] && [ -s "$RESULTS" ]; then
	# keep the previous rows of the sections not run now
	KEPT=$("$PY" bench/py/report.py keep "$RESULTS" "$ONLY")
else
	: >"$RESULTS"
fi

# The commit the binaries are built from (others may commit while it runs).
BUILD_COMMIT=$(git rev-parse --short HEAD)$(git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
BUILD_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
log "building $BUILD_COMMIT into $BIN"
CGO_ENABLED=0 go build -o "$BIN/" ./cmd/runferry ./bench/genwandb ./bench/readwandb ./bench/parquetwrite ./bench/mlflowceiling ./bench/gentb ./bench/readtb ./bench/wandbserve ./bench/wandbfloor ./bench/readmlflow

# --- inputs ----------------------------------------------------------------
# A folder is reused when its stamp (generator flags + hash of the generator
# and the encoder it uses) matches.
GEN_HASH=$(cat bench/genwandb/main.go internal/wandbfile/encode.go internal/wandbfile/writer.go | sha256sum | cut -c1-16)
INPUT_CMDS=()
gen_run() { # DIR ROWS
	local dir=$1 rows=$2
	local args=(-out "$dir" -rows "$rows" -keys 20 -stats-every 100)
	local stamp="${args[*]} $GEN_HASH"
	INPUT_CMDS+=("genwandb ${args[*]}")
	if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ]; then
		log "reusing $dir"
		return
	fi
	log "generating $dir ($rows rows)"
	rm -rf "$dir"
	"$BIN/genwandb" "${args[@]}" >"$dir.json.tmp"
	mv "$dir.json.tmp" "$dir.json"
	echo "$stamp" >"$dir/stamp"
}
wandb_file() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["wandb_file"])' "$1.json"; }

if want default; then
W1M=$SCRATCH/wandb-${WANDB_ROWS}
WE2E=$SCRATCH/wandb-${E2E_ROWS}
gen_run "$W1M" "$WANDB_ROWS"
gen_run "$WE2E" "$E2E_ROWS"
W1M_FILE=$(wandb_file "$W1M")
log "$(du -h "$W1M_FILE" | cut -f1) .wandb file: $W1M_FILE"
fi

# --- measurement -----------------------------------------------------------
# measure BENCH SIDE REP [--verify CMD...] -- CMD...
# Runs CMD under /usr/bin/time and records wall time, peak RSS, CPU time
# (user+sys of CMD and its children) and the JSON it printed (or, with
# --verify, the JSON the verify command prints after).
measure() {
	local bench=$1 side=$2 rep=$3
	shift 3
	local verify=()
	if [ "$1" = --verify ]; then
		shift
		while [ "$1" != -- ]; do verify+=("$1"); shift; done
	fi
	[ "$1" = -- ] && shift
	local tf=$SCRATCH/time.txt of=$SCRATCH/stdout.txt
	log "$bench/$side #$rep: $*"
	"$TIME" -f '%e %M %U %S' -o "$tf" "$@" >"$of" || die "$bench/$side failed: $*"
	if [ ${#verify[@]} -gt 0 ]; then
		"${verify[@]}" >"$of" || die "$bench/$side: verification failed: ${verify[*]}"
	fi
	local wall rss usr sys
	read -r wall rss usr sys <"$tf"
	"$PY" bench/py/report.py record "$RESULTS" "$bench" "$side" "$rep" "$wall" "$rss" "$of" "$*" "$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

if want default; then
# Interleave: odd repetitions run theirs first, even ones ours first.

for rep in $(seq "$REPEAT"); do
	py_side() { measure wandb-decode python-sdk "$rep" -- "$PY" bench/py/wandb_sdk_read.py "$W1M_FILE"; }
	go_sides() {
		measure wandb-decode go-source "$rep" -- "$BIN/readwandb" -mode source "$W1M/wandb"
		measure wandb-decode go-file "$rep" -- "$BIN/readwandb" -mode file "$W1M_FILE"
	}
	if ((rep % 2)); then py_side; go_sides; else go_sides; py_side; fi
done

PQ=$SCRATCH/parquet-write
mkdir -p "$PQ"
for rep in $(seq "$REPEAT"); do
	theirs() { measure parquet-write pyarrow "$rep" -- "$PY" bench/py/parquet_write.py "$PARQUET_ROWS" "$PQ/pyarrow.parquet"; }
	ours() { measure parquet-write go-parquet "$rep" -- "$BIN/parquetwrite" -rows "$PARQUET_ROWS" "$PQ/go.parquet"; }
	if ((rep % 2)); then theirs; ours; else ours; theirs; fi
done

E2E=$SCRATCH/e2e
for rep in $(seq "$REPEAT"); do
	theirs() {
		rm -rf "$E2E/py.parquet" && mkdir -p "$E2E"
		measure e2e-parquet python-pandas "$rep" -- "$PY" bench/py/wandb_to_parquet.py "$WE2E/wandb" "$E2E/py.parquet"
	}
	ours() {
		rm -rf "$E2E/archive" && mkdir -p "$E2E"
		measure e2e-parquet runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$E2E/archive" -- \
			"$BIN/runferry" copy "wandb:$WE2E/wandb" "parquet:$E2E/archive" --no-state -q
	}
	if ((rep % 2)); then theirs; ours; else ours; theirs; fi
done
fi

if want default && [ "${BENCH_LARGE:-}" = 1 ]; then
	WL=$SCRATCH/wandb-${LARGE_ROWS}
	gen_run "$WL" "$LARGE_ROWS"
	rm -rf "$SCRATCH/large-archive"
	measure large-copy runferry-copy 1 --verify "$PY" bench/py/parquet_points.py "$SCRATCH/large-archive" -- \
		"$BIN/runferry" copy "wandb:$WL/wandb" "parquet:$SCRATCH/large-archive" --no-state -q
	rm -rf "$SCRATCH/large-archive"
fi

if want tensorboard; then
	# TensorBoard event files: the tensorboard source vs EventAccumulator
	# (size guidance keeping everything), then the source alone on ten
	# times the points, whose peak RSS shows memory stays flat.
	TB_STEPS=${BENCH_TB_STEPS:-12500}
	TB_HASH=$(cat bench/gentb/main.go internal/tfevents/record.go | sha256sum | cut -c1-16)
	gen_tb() { # DIR STEPS
		local stamp="-steps $2 -keys 20 $TB_HASH"
		INPUT_CMDS+=("gentb -out $1 -steps $2 -keys 20")
		if [ -f "$1/stamp" ] && [ "$(cat "$1/stamp")" = "$stamp" ]; then
			log "reusing $1"
			return
		fi
		log "generating $1"
		rm -rf "$1"
		"$BIN/gentb" -out "$1" -steps "$2" -keys 20 >/dev/null
		echo "$stamp" >"$1/stamp"
	}
	TB1=$SCRATCH/tensorboard-$TB_STEPS
	TB10=$SCRATCH/tensorboard-$((TB_STEPS * 10))
	gen_tb "$TB1" "$TB_STEPS"
	gen_tb "$TB10" "$((TB_STEPS * 10))"
	"$PY" -c 'import tensorboard' 2>/dev/null || die "$VENV lacks tensorboard: run 'make venv'"
	for rep in $(seq "$REPEAT"); do
		theirs() { measure tensorboard-read event-accumulator "$rep" -- "$PY" bench/py/tensorboard_read.py "$TB1"; }
		ours() { measure tensorboard-read go-source "$rep" -- "$BIN/readtb" "$TB1"; }
		if ((rep % 2)); then theirs; ours; else ours; theirs; fi
	done
	measure tensorboard-read-10x go-source 1 -- "$BIN/readtb" "$TB10"
fi

if want wandbcloud; then
	source bench/wandbcloud.sh
fi

if want mlflowfile; then
	source bench/mlflowfile.sh
fi

if want mlflow; then
	source bench/mlflow.sh
fi

# --- report ----------------------------------------------------------------
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
"$PY" - "$FACTS" <<EOF
import json, platform, subprocess, sys, datetime
import pyarrow, pandas, numpy, wandb, mlflow
try:
    from importlib.metadata import version
    mei = version("mlflow-export-import")
except Exception:
    mei = "not installed"
def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
mem_kb = int(sh("grep MemTotal /proc/meminfo | awk '{print \$2}'") or 0)
facts = {
    "date": "started $BUILD_DATE, finished " + datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "commit": "$BUILD_COMMIT (binaries built at the start of the run)",
    "cpu": cpu, "nproc": sh("nproc"), "memory": "%.0f GB" % (mem_kb / 1024 / 1024),
    "os": platform.platform(), "go": sh("go env GOVERSION"), "python": platform.python_version(),
    "packages": "wandb %s, pyarrow %s, pandas %s, numpy %s, mlflow %s, mlflow-export-import %s" % (wandb.__version__, pyarrow.__version__, pandas.__version__, numpy.__version__, mlflow.__version__, mei),
    "load_before": "$LOAD_BEFORE", "load_after": "$LOAD_AFTER",
    "scratch": "$SCRATCH", "repeat": $REPEAT,
    "sections": "$([ -n "$ONLY" ] && echo "only $ONLY${KEPT:+; $KEPT}" || echo all)",
    "inputs": [],
}
json.dump(facts, open(sys.argv[1], "w"), indent=1)
EOF
"$PY" - "$FACTS" "${INPUT_CMDS[@]}" <<'EOF'
import json, sys
facts = json.load(open(sys.argv[1]))
facts["inputs"] = sys.argv[2:]
json.dump(facts, open(sys.argv[1], "w"), indent=1)
EOF
status=0
"$PY" bench/py/report.py write "$RESULTS" "$FACTS" bench/NOTES.md "$SCRATCH/go-bench.txt" "$OUT" || status=$?
log "wrote $OUT"
exit $status
