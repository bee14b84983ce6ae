# The MLflow file store section of bench/run.sh (sourced by it: uses its
# variables and its die, log, measure and INPUT_CMDS).
#
#   mlflowfile-read: bench/readmlflow reading every run and metric point of
#     a file store directly (mlflow+file:STORE) against the same program
#     reading the same runs through a real `mlflow server` serving that
#     store (mlflow+http://..., runferry's own MLflow source), interleaved.
#     Both must see the same runs, points and sum.
#
# Knobs: BENCH_MLRUNS_RUNS (default 20) x BENCH_MLRUNS_STEPS (default 1000)
# steps of 20 keys: 400k points, written by bench/py/mlruns_gen.py in
# MLflow's own layout.

MLFLOW_BIN=$VENV/bin/mlflow
[ -x "$MLFLOW_BIN" ] || die "no mlflow in $VENV: run 'make venv'"
MLR_RUNS=${BENCH_MLRUNS_RUNS:-20}
MLR_STEPS=${BENCH_MLRUNS_STEPS:-1000}
MLR=$SCRATCH/mlruns-${MLR_RUNS}x${MLR_STEPS}
MLR_STAMP="$MLR_RUNS $MLR_STEPS 20 $(sha256sum bench/py/mlruns_gen.py | cut -c1-16)"
INPUT_CMDS+=("mlruns_gen.py $MLR/mlruns $MLR_RUNS $MLR_STEPS 20")
if [ -f "$MLR/stamp" ] && [ "$(cat "$MLR/stamp")" = "$MLR_STAMP" ]; then
	log "reusing $MLR"
else
	log "generating $MLR"
	rm -rf "$MLR"
	mkdir -p "$MLR"
	"$PY" bench/py/mlruns_gen.py "$MLR/mlruns" "$MLR_RUNS" "$MLR_STEPS" 20 >"$MLR/expected.json"
	echo "$MLR_STAMP" >"$MLR/stamp"
fi

# One server for the section, on the store (it only reads it); its process
# group is stopped on exit.
MLR_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(
	cd "$MLR"
	export MLFLOW_TRACKING_URI= PYTHONUNBUFFERED=1 MLFLOW_ENABLE_TELEMETRY=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
	export MLFLOW_ALLOW_FILE_STORE=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
	exec setsid "$MLFLOW_BIN" server --backend-store-uri "file://$MLR/mlruns" --artifacts-destination "$MLR/artifacts" \
		--serve-artifacts --host 127.0.0.1 --port "$MLR_PORT" --workers 1 \
		--allowed-hosts "127.0.0.1,127.0.0.1:$MLR_PORT,localhost,localhost:$MLR_PORT"
) >"$MLR/server.log" 2>&1 </dev/null &
MLR_PID=$!
stop_mlr() { kill -TERM -- "-$MLR_PID" 2>/dev/null || true; sleep 1; kill -KILL -- "-$MLR_PID" 2>/dev/null || true; }
trap stop_mlr EXIT
for i in $(seq 240); do
	curl -sf "http://127.0.0.1:$MLR_PORT/health" >/dev/null 2>&1 && break
	kill -0 "$MLR_PID" 2>/dev/null || { tail -20 "$MLR/server.log" >&2; die "mlflow server on $MLR did not start"; }
	sleep 0.5
done
sleep 5 # let the server's start-up imports finish before measuring

same() { # the JSON of two sides: equal runs, points and sum
	"$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
k=("runs","points")
assert all(a[x]==b[x] for x in k) and abs(a["sum"]-b["sum"])<1e-6*max(1,abs(a["sum"])), (a,b)' "$1" "$2"
}
for rep in $(seq "$REPEAT"); do
	direct() { measure mlflowfile-read direct "$rep" -- "$BIN/readmlflow" "mlflow+file:$MLR/mlruns"; cp "$SCRATCH/stdout.txt" "$MLR/direct.json"; }
	server() { measure mlflowfile-read server "$rep" -- "$BIN/readmlflow" "mlflow+http://127.0.0.1:$MLR_PORT"; cp "$SCRATCH/stdout.txt" "$MLR/server.json"; }
	if ((rep % 2)); then server; direct; else direct; server; fi
	same "$MLR/direct.json" "$MLR/server.json" || die "mlflowfile-read: the two sides read different data"
	same "$MLR/direct.json" "$MLR/expected.json" || die "mlflowfile-read: not what mlruns_gen.py wrote"
done
stop_mlr
trap - EXIT
