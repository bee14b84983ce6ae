# The W&B cloud section of bench/run.sh (sourced): runferry exporting a
# project from the W&B API test server (bench/wandbserve: GraphQL limited
# to BENCH_WANDB_CLOUD_RATE requests a second, every answer delayed by
# BENCH_WANDB_CLOUD_LATENCY) into a Parquet archive, side by side with the
# wandb SDK's scan_history loop over the same runs (bench/py/
# wandb_cloud_scan.py), and the lower bound the rate limit and latency set:
# the (1 + ceil(runs/50) + 2 runs) GraphQL requests any full export needs
# (the project, the runs listing pages, per run one parquetHistory and one
# files listing), less the
# server's initial bucket of BENCH_WANDB_CLOUD_RATE requests, at the rate,
# plus one latency.
# Knobs: BENCH_WANDB_CLOUD_RUNS (default 100), BENCH_WANDB_CLOUD_STEPS
# (default 2000), BENCH_WANDB_CLOUD_KEYS (default 10),
# BENCH_WANDB_CLOUD_RATE (default 10), BENCH_WANDB_CLOUD_LATENCY (default
# 100ms).
WC_RUNS=${BENCH_WANDB_CLOUD_RUNS:-100}
WC_STEPS=${BENCH_WANDB_CLOUD_STEPS:-2000}
WC_KEYS=${BENCH_WANDB_CLOUD_KEYS:-10}
WC_RATE=${BENCH_WANDB_CLOUD_RATE:-10}
WC_LATENCY=${BENCH_WANDB_CLOUD_LATENCY:-100ms}
WC=$SCRATCH/wandbcloud
mkdir -p "$WC"
INPUT_CMDS+=("wandbserve -runs $WC_RUNS -steps $WC_STEPS -keys $WC_KEYS -rate $WC_RATE -latency $WC_LATENCY")
"$BIN/wandbserve" -runs "$WC_RUNS" -steps "$WC_STEPS" -keys "$WC_KEYS" -rate "$WC_RATE" -latency "$WC_LATENCY" >"$WC/server.json" &
WC_PID=$!
trap 'kill $WC_PID 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -s "$WC/server.json" ] && break; sleep 0.2; done
[ -s "$WC/server.json" ] || die "wandbserve did not start"
WC_URL=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WC/server.json")
WC_KEY=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$WC/server.json")
WC_LOC="wandb+http://${WC_URL#http://}/bench/bench"
# The lower bound, recorded as a side of its own (no program runs).
WC_BOUND=$("$PY" -c 'import math,sys; r,rate,lat=int(sys.argv[1]),float(sys.argv[2]),sys.argv[3]; lat=float(lat[:-2])/1000 if lat.endswith("ms") else float(lat.rstrip("s")); print(max(1+math.ceil(r/50)+2*r-math.floor(rate),0)/rate+lat)' "$WC_RUNS" "$WC_RATE" "$WC_LATENCY")
echo "{\"requests\": $((1 + (WC_RUNS + 49) / 50 + 2 * WC_RUNS))}" >"$WC/bound.json"
"$PY" bench/py/report.py record "$RESULTS" wandb-cloud lower-bound 1 "$WC_BOUND" 0 "$WC/bound.json" "((1 + ceil($WC_RUNS/50) + 2 x $WC_RUNS) requests - a bucket of $WC_RATE) / $WC_RATE per s + $WC_LATENCY"
wc_stats() { curl -s "$WC_URL/_bench/stats" >&2; echo >&2; curl -s -X POST "$WC_URL/_bench/reset" >/dev/null; }
for rep in $(seq "$REPEAT"); do
	theirs() {
		measure wandb-cloud sdk-scan-history "$rep" -- env WANDB_BASE_URL="$WC_URL" WANDB_API_KEY="$WC_KEY" \
			WANDB_CACHE_DIR="$WC/sdk-cache-$rep" WANDB_CONFIG_DIR="$WC/sdk-config" WANDB_SILENT=true NO_PROXY=127.0.0.1 \
			"$PY" bench/py/wandb_cloud_scan.py bench/bench
		log "server counters after the SDK:"; wc_stats
		rm -rf "$WC/sdk-cache-$rep"
	}
	ours() {
		rm -rf "$WC/archive"
		measure wandb-cloud runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_LOC" "parquet:$WC/archive" --no-state -q
		log "server counters after runferry:"; wc_stats
	}
	if ((rep % 2)); then theirs; ours; else ours; theirs; fi
done
kill "$WC_PID" 2>/dev/null || true
wait "$WC_PID" 2>/dev/null || true
trap - EXIT
