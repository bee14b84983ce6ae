#!/usr/bin/env bash
# bench/mlflowkeys.sh OLD_BIN NEW_BIN [ROUNDS]: reading an MLflow server's
# runs with many metric keys. Copies the Tarun-AK__scaling W&B sample (its
# runs hold up to 2,062 metric keys) into a fresh `mlflow server` (SQLite
# store, one worker as internal/testenv starts it, or MLFLOW_WORKERS) with NEW_BIN, then times
# `copy mlflow+URL parquet:DIR` with OLD_BIN and NEW_BIN in turn, ROUNDS
# (default 2) times each, printing wall, user and sys seconds and the load
# average. The server's process group is stopped on exit.
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-2} WORKERS=${MLFLOW_WORKERS:-1}
VENV=${RUNFERRY_VENV:-/work/main/.venv}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SAMPLE=$ROOT/../shared/samples/wandb/Tarun-AK__scaling/wandb
DIR=$(mktemp -d /tmp/runferry-bench-mlflowkeys-XXXXXX)
PID=""
cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM -- "-$PID" 2>/dev/null || true
		sleep 2
		kill -KILL -- "-$PID" 2>/dev/null || true
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(
	cd "$DIR"
	export MLFLOW_TRACKING_URI= MLFLOW_ENABLE_TELEMETRY=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
	exec setsid "$VENV/bin/mlflow" server --backend-store-uri "sqlite:///$DIR/mlflow.db" \
		--artifacts-destination "$DIR/artifacts" --serve-artifacts --host 127.0.0.1 --port "$PORT" \
		--workers "$WORKERS" --allowed-hosts "127.0.0.1,127.0.0.1:$PORT,localhost,localhost:$PORT"
) >"$DIR/server.log" 2>&1 </dev/null &
PID=$!
for _ in $(seq 600); do
	curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
	sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { tail "$DIR/server.log"; exit 1; }
URL="mlflow+http://127.0.0.1:$PORT"
"$NEW" copy "wandb:$SAMPLE?crashed-after=1ns" "$URL" --no-state -q --keep-personal || [ $? -eq 3 ]
echo "side,round,wall_s,user_s,sys_s,load1"
for round in $(seq "$ROUNDS"); do
	for side in old new; do
		bin=$OLD
		[ "$side" = new ] && bin=$NEW
		rm -rf "$DIR/archive"
		/usr/bin/time -f "%e %U %S" -o "$DIR/time" "$bin" copy "$URL" "parquet:$DIR/archive" --no-state -q || [ $? -eq 3 ]
		read -r wall user sys < <(tail -1 "$DIR/time")
		echo "$side,$round,$wall,$user,$sys,$(cut -d' ' -f1 /proc/loadavg)"
	done
done
