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
. "$ROOT/bench/lib.sh"
trap 'mlflow_server_stop; rm -rf "$DIR"' EXIT
mlflow_server_start "$DIR" "sqlite:///$DIR/mlflow.db" "$DIR/artifacts" --workers "$WORKERS"
URL="mlflow+$MLFLOW_URL"
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
