# bench/lib.sh: shell functions the bench scripts share. Source it from bash
# (`. "$ROOT/bench/lib.sh"`) after setting VENV, the Python venv whose
# `mlflow` and `python` are used.

# mlflow_server_start DIR STORE ARTIFACTS [ARG...]: starts `mlflow server` of
# $VENV on a free port of 127.0.0.1, in DIR, with the backend store STORE (a
# URI), its artifacts proxied (--serve-artifacts) into the folder ARTIFACTS,
# no job execution, no telemetry, and any further server ARGs (--workers N);
# its output goes to DIR/server.log. The server and its workers form one
# process group (setsid) whose id it sets in MLFLOW_PID, the one
# mlflow_server_stop stops. It waits for /health (3 minutes at the most)
# and sets MLFLOW_URL (http://127.0.0.1:PORT); a server that dies or does
# not answer by then has its log's tail printed, and the call returns 1.
mlflow_server_start() {
	local dir=$1 store=$2 artifacts=$3 port i
	shift 3
	port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	(
		cd "$dir"
		export MLFLOW_TRACKING_URI= MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
			MLFLOW_ENABLE_TELEMETRY=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
		# setsid: a non-interactive shell's background job leads no process
		# group, so setsid runs the server under this pid, leading its own.
		exec setsid "$VENV/bin/mlflow" server --backend-store-uri "$store" \
			--artifacts-destination "$artifacts" --serve-artifacts --host 127.0.0.1 --port "$port" \
			--allowed-hosts "127.0.0.1,127.0.0.1:$port,localhost,localhost:$port" "$@"
	) >"$dir/server.log" 2>&1 </dev/null &
	MLFLOW_PID=$!
	MLFLOW_URL=http://127.0.0.1:$port
	for i in $(seq 360); do
		curl -sf "$MLFLOW_URL/health" >/dev/null 2>&1 && return 0
		kill -0 "$MLFLOW_PID" 2>/dev/null || break
		sleep 0.5
	done
	tail -20 "$dir/server.log" >&2
	echo "mlflow server in $dir did not start (log: $dir/server.log)" >&2
	return 1
}

# mlflow_server_stop: stops the process group mlflow_server_start started
# (TERM, then KILL after 5 s); nothing if none is running. For an EXIT trap.
mlflow_server_stop() {
	local i
	[ -n "${MLFLOW_PID:-}" ] || return 0
	kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || true
	for i in $(seq 20); do
		kill -0 "$MLFLOW_PID" 2>/dev/null || break
		sleep 0.25
	done
	kill -KILL -- "-$MLFLOW_PID" 2>/dev/null || true
	MLFLOW_PID=
}
