# The W&B cloud section of bench/run.sh (sourced): runferry exporting a
# project from the W&B API test server (bench/wandbserve: GraphQL limited
# to BENCH_WANDB_CLOUD_RATE requests a second, every answer delayed by
# BENCH_WANDB_CLOUD_LATENCY; downloads from signed URLs are storage's, as in
# W&B, and not rate-limited) into a Parquet archive, side by side with the
# wandb SDK's scan_history loop over the same runs (bench/py/
# wandb_cloud_scan.py), the same runferry copy with the limit and latency
# lifted (the machine's own cost of the export), and the lower bound the
# rate limit and latency set: the (1 + ceil(runs/50)) GraphQL requests any
# full export needs (the project and the runs listing pages, which carry
# each run's parquetHistory, files and artifacts: see docs/WANDB-CLOUD.md
# "Requests per run"), less the server's initial bucket of
# BENCH_WANDB_CLOUD_RATE requests, at the rate, plus one latency.
# The server makes the histories on demand (wandbtest.Generated), so the
# issue's size runs with the server's memory flat.
# The SDK side reads only the first BENCH_WANDB_CLOUD_SDK_RUNS runs (a
# project "subset" of the same server), side by side with runferry
# copying that same subset (bench wandb-cloud-sdk); runferry also copies
# the whole project, limited and unthrottled (bench wandb-cloud).
# Knobs: BENCH_WANDB_CLOUD_RUNS (default 1000), BENCH_WANDB_CLOUD_STEPS
# (default 10000, the size), BENCH_WANDB_CLOUD_SDK_RUNS (default
# 200: the SDK takes about a second a run of 10,000 steps here),
# BENCH_WANDB_CLOUD_KEYS (default 10),
# BENCH_WANDB_CLOUD_RATE (default 10), BENCH_WANDB_CLOUD_LATENCY (default
# 100ms), BENCH_WANDB_CLOUD_REPEAT (default BENCH_REPEAT: the SDK side takes
# several minutes a repetition at the default size).
WC_RUNS=${BENCH_WANDB_CLOUD_RUNS:-1000}
WC_STEPS=${BENCH_WANDB_CLOUD_STEPS:-10000}
WC_SDK_RUNS=${BENCH_WANDB_CLOUD_SDK_RUNS:-200}
WC_SDK_RUNS=$((WC_SDK_RUNS < WC_RUNS ? WC_SDK_RUNS : WC_RUNS))
WC_REPEAT=${BENCH_WANDB_CLOUD_REPEAT:-$REPEAT}
WC_KEYS=${BENCH_WANDB_CLOUD_KEYS:-10}
WC_RATE=${BENCH_WANDB_CLOUD_RATE:-10}
WC_LATENCY=${BENCH_WANDB_CLOUD_LATENCY:-100ms}
WC=$SCRATCH/wandbcloud
mkdir -p "$WC"
INPUT_CMDS+=("wandbserve -runs $WC_RUNS -steps $WC_STEPS -keys $WC_KEYS -rate $WC_RATE -latency $WC_LATENCY -subset $WC_SDK_RUNS")
"$BIN/wandbserve" -runs "$WC_RUNS" -steps "$WC_STEPS" -keys "$WC_KEYS" -rate "$WC_RATE" -latency "$WC_LATENCY" -subset "$WC_SDK_RUNS" >"$WC/server.json" &
WC_PID=$!
trap 'kill $WC_PID 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -s "$WC/server.json" ] && break; sleep 0.2; done
[ -s "$WC/server.json" ] || die "wandbserve did not start"
WC_URL=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WC/server.json")
WC_KEY=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$WC/server.json")
WC_LOC="wandb+http://${WC_URL#http://}/bench/bench"
WC_SUB="wandb+http://${WC_URL#http://}/bench/subset"
# The lower bounds, recorded as sides of their own (no program runs).
wc_bound() { # bench runs
	local b
	b=$("$PY" -c 'import math,sys; r,rate,lat=int(sys.argv[1]),float(sys.argv[2]),sys.argv[3]; lat=float(lat[:-2])/1000 if lat.endswith("ms") else float(lat.rstrip("s")); print(max(1+math.ceil(r/50)-math.floor(rate),0)/rate+lat)' "$2" "$WC_RATE" "$WC_LATENCY")
	echo "{\"requests\": $((1 + ($2 + 49) / 50))}" >"$WC/bound.json"
	"$PY" bench/py/report.py record "$RESULTS" "$1" lower-bound 1 "$b" 0 "$WC/bound.json" "((1 + ceil($2/50)) requests - a bucket of $WC_RATE) / $WC_RATE per s + $WC_LATENCY"
}
wc_bound wandb-cloud "$WC_RUNS"
wc_bound wandb-cloud-sdk "$WC_SDK_RUNS"
wc_stats() { curl -s "$WC_URL/_bench/stats" >&2; echo >&2; curl -s -X POST "$WC_URL/_bench/reset" >/dev/null; }
for rep in $(seq "$WC_REPEAT"); do
	theirs() {
		measure wandb-cloud-sdk sdk-scan-history "$rep" -- env WANDB_BASE_URL="$WC_URL" WANDB_API_KEY="$WC_KEY" \
			WANDB_CACHE_DIR="$WC/sdk-cache-$rep" WANDB_CONFIG_DIR="$WC/sdk-config" WANDB_SILENT=true NO_PROXY=127.0.0.1 \
			"$PY" bench/py/wandb_cloud_scan.py bench/subset
		log "server counters after the SDK:"; wc_stats
		rm -rf "$WC/sdk-cache-$rep"
	}
	ours() {
		rm -rf "$WC/archive"
		measure wandb-cloud-sdk runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_SUB" "parquet:$WC/archive" --no-state -q
		log "server counters after runferry (subset):"; wc_stats
		rm -rf "$WC/archive"
		measure wandb-cloud runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_LOC" "parquet:$WC/archive" --no-state -q
		log "server counters after runferry:"; wc_stats
		# The same copy without the rate limit and latency.
		curl -sf -X POST "$WC_URL/_bench/limit?rate=0&latency=0s" >/dev/null || die "wandbserve: cannot lift the limit"
		rm -rf "$WC/archive"
		measure wandb-cloud runferry-unthrottled "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_LOC" "parquet:$WC/archive" --no-state -q
		curl -sf -X POST "$WC_URL/_bench/limit?rate=$WC_RATE&latency=$WC_LATENCY" >/dev/null || die "wandbserve: cannot set the limit"
		log "server counters after the unthrottled runferry:"; wc_stats
	}
	if ((rep % 2)); then theirs; ours; else ours; theirs; fi
done
kill "$WC_PID" 2>/dev/null || true
wait "$WC_PID" 2>/dev/null || true
trap - EXIT
