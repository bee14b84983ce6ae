# The W&B cloud section of bench/run.sh (sourced): runferry exporting a
# project from the W&B API test server (bench/wandbserve: GraphQL limited
# to BENCH_WANDB_CLOUD_RATE requests a second, every answer delayed by
# BENCH_WANDB_CLOUD_LATENCY; downloads from signed URLs are storage's, as in
# W&B, and not rate-limited) into a Parquet archive, side by side with the
# wandb SDK's scan_history loop over the same runs (bench/py/
# wandb_cloud_scan.py), the same runferry copy with the limit and latency
# lifted (the machine's own cost of the export), and the lower bound the
# rate limit and latency set (wc_bound below): the N GraphQL requests any
# full export needs (the project and the runs listing pages, which carry
# each run's parquetHistory, files and artifacts: see docs/WANDB-CLOUD.md
# "Requests per run"; plus, for runs with system metrics or console lines,
# one request a run for each), whichever is longer of (N less the server's
# initial bucket of BENCH_WANDB_CLOUD_RATE requests) at the rate plus one
# latency, and the listing pages one after the other (each page's cursor is
# in the answer before it: (1 + pages) latencies) plus one download's
# latency.
# Every runferry copy is a first job with a fresh ledger (--state), as a
# user's first export is: it asks each listing page once, in export form
# (--no-state would ask each page twice: docs/WANDB-CLOUD.md).
# Where the rate limit binds (bench wandb-cloud-bound): a second server of
# BENCH_WANDB_CLOUD_BIND_RUNS runs (default 1000) of
# BENCH_WANDB_CLOUD_BIND_STEPS steps (default 100) with
# BENCH_WANDB_CLOUD_BIND_EVENTS system-metrics rows each (default 10: one
# events request a run, as for every run the SDK's default system monitor
# wrote), the same rate and latency, runferry against its lower bound.
# The server makes the histories on demand (wandbtest.Generated), so the
# issue's size runs with the server's memory flat.
# The SDK side reads only the first BENCH_WANDB_CLOUD_SDK_RUNS runs (a
# project "subset" of the same server), side by side with runferry
# copying that same subset (bench wandb-cloud-sdk); runferry also copies
# the whole project, limited and unthrottled (bench wandb-cloud).
# The machine's floor (bench wandb-cloud, side machine-floor): the same
# runs' parquet exports, written to disk before the clock (bench/wandbfloor
# -prepare: the bytes the server sends), decoded with the W&B cloud
# source's decoding and written into a local archive through runferry's
# engine and Parquet sink with a fresh ledger (bench/wandbfloor -copy): no
# server, listing or download. The job can come no closer than
# max(lower bound, floor); where the floor is above the bound, the
# machine binds, not the rate limit. Beside it, an independent floor (side
# pyarrow-floor): the same exports read and written into the archive's
# metrics layout (long format, same columns, sort and encodings) by pyarrow
# alone (bench/py/wandb_floor.py), what any tool takes for the points'
# data path on this machine (without ledger, digests or manifest). BENCH_WANDB_CLOUD_FLOOR=0 skips it
# (the exports take about 1.2 GB of disk at the size).
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
# wc_serve_start ARGS...: starts wandbserve with ARGS (stopped when the script
# exits), waits for its server.json and sets WC_PID and WC_URL.
wc_serve_start() {
	rm -f "$WC/server.json"
	"$BIN/wandbserve" "$@" >"$WC/server.json" &
	WC_PID=$!
	trap 'kill $WC_PID 2>/dev/null || true' EXIT
	for _ in $(seq 600); do [ -s "$WC/server.json" ] && break; sleep 0.2; done
	[ -s "$WC/server.json" ] || die "wandbserve did not start"
	WC_URL=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$WC/server.json")
}
# wc_serve_stop: stops the server wc_serve_start started.
wc_serve_stop() {
	kill "$WC_PID" 2>/dev/null || true
	wait "$WC_PID" 2>/dev/null || true
	trap - EXIT
}
wc_serve_start -runs "$WC_RUNS" -steps "$WC_STEPS" -keys "$WC_KEYS" -rate "$WC_RATE" -latency "$WC_LATENCY" -subset "$WC_SDK_RUNS"
WC_KEY=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$WC/server.json")
WC_LOC="wandb+http://${WC_URL#http://}/bench/bench"
WC_SUB="wandb+http://${WC_URL#http://}/bench/subset"
# The lower bounds, recorded as sides of their own (no program runs).
wc_bound() { # bench runs [requests per run]
	local b per=${3:-0}
	b=$("$PY" -c 'import math,sys
r,per,rate,lat=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),sys.argv[4]
lat=float(lat[:-2])/1000 if lat.endswith("ms") else float(lat.rstrip("s"))
n=1+math.ceil(r/50)+per*r
print(max(max(n-math.floor(rate),0)/rate+lat, (1+math.ceil(r/50))*lat+lat))' "$2" "$per" "$WC_RATE" "$WC_LATENCY")
	echo "{\"requests\": $((1 + ($2 + 49) / 50 + per * $2))}" >"$WC/bound.json"
	"$PY" bench/py/report.py record "$RESULTS" "$1" lower-bound 1 "$b" 0 "$WC/bound.json" "max(((1 + ceil($2/50) + $per x $2) requests - a bucket of $WC_RATE) / $WC_RATE per s + $WC_LATENCY, (1 + ceil($2/50)) listing requests one after the other + a download, $WC_LATENCY each)"
}
wc_bound wandb-cloud "$WC_RUNS"
WC_FLOOR=${BENCH_WANDB_CLOUD_FLOOR:-1}
if [ "$WC_FLOOR" = 1 ]; then
	rm -rf "$WC/exports"
	INPUT_CMDS+=("wandbfloor -prepare DIR -runs $WC_RUNS -steps $WC_STEPS -keys $WC_KEYS")
	"$BIN/wandbfloor" -prepare "$WC/exports" -runs "$WC_RUNS" -steps "$WC_STEPS" -keys "$WC_KEYS" >"$WC/exports.json" || die "wandbfloor -prepare failed"
fi
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
		rm -rf "$WC/archive" "$WC/archive.ledger"
		measure wandb-cloud-sdk runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_SUB" "parquet:$WC/archive" --state "$WC/archive.ledger" -q
		log "server counters after runferry (subset):"; wc_stats
		rm -rf "$WC/archive" "$WC/archive.ledger"
		measure wandb-cloud runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_LOC" "parquet:$WC/archive" --state "$WC/archive.ledger" -q
		log "server counters after runferry:"; wc_stats
		# The same copy without the rate limit and latency.
		curl -sf -X POST "$WC_URL/_bench/limit?rate=0&latency=0s" >/dev/null || die "wandbserve: cannot lift the limit"
		rm -rf "$WC/archive" "$WC/archive.ledger"
		measure wandb-cloud runferry-unthrottled "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_LOC" "parquet:$WC/archive" --state "$WC/archive.ledger" -q
		curl -sf -X POST "$WC_URL/_bench/limit?rate=$WC_RATE&latency=$WC_LATENCY" >/dev/null || die "wandbserve: cannot set the limit"
		log "server counters after the unthrottled runferry:"; wc_stats
		if [ "$WC_FLOOR" = 1 ]; then
			# The machine's floor: the same exports from disk, no server.
			rm -rf "$WC/archive" "$WC/archive.ledger"
			measure wandb-cloud machine-floor "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
				"$BIN/wandbfloor" -copy "$WC/exports" -archive "$WC/archive" -state "$WC/archive.ledger"
			# An independent floor: the same exports into the archive's
			# metrics layout with pyarrow alone (bench/py/wandb_floor.py).
			rm -rf "$WC/pyfloor"
			measure wandb-cloud pyarrow-floor "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/pyfloor" -- \
				"$PY" bench/py/wandb_floor.py "$WC/exports" "$WC/pyfloor"
			rm -rf "$WC/pyfloor"
		fi
	}
	if ((rep % 2)); then theirs; ours; else ours; theirs; fi
done
wc_serve_stop
trap - EXIT
rm -rf "$WC/exports" "$WC/archive" "$WC/archive.ledger"

# The size with system metrics (bench wandb-cloud-system): the same
# runs (BENCH_WANDB_CLOUD_RUNS x BENCH_WANDB_CLOUD_STEPS), each with
# BENCH_WANDB_CLOUD_SYSTEM_EVENTS system-metrics rows (default 240: a run of
# an hour sampled every 15 s, wandb-core's default interval) of
# BENCH_WANDB_CLOUD_SYSTEM_KEYS values (default 13: the keys the SDK's
# monitor writes on a machine without GPUs), as every run the SDK writes
# with its default system monitor has: one events request a run, so the
# rate limit's bound is about runs / rate. Side by side: runferry limited
# and the bound; the machine floor of the same histories is bench
# wandb-cloud's side machine-floor, measured above in the same job (it
# leaves out the system metrics, 3% of the points, so it is not a side of
# this bench, whose sides must hold the same points).
# BENCH_WANDB_CLOUD_SYSTEM=0 skips it.
if [ "${BENCH_WANDB_CLOUD_SYSTEM:-1}" = 1 ]; then
	WCS_EVENTS=${BENCH_WANDB_CLOUD_SYSTEM_EVENTS:-240}
	WCS_KEYS=${BENCH_WANDB_CLOUD_SYSTEM_KEYS:-13}
	INPUT_CMDS+=("wandbserve -runs $WC_RUNS -steps $WC_STEPS -keys $WC_KEYS -rate $WC_RATE -latency $WC_LATENCY -events $WCS_EVENTS -event-keys $WCS_KEYS -event-interval 15s")
	wc_serve_start -runs "$WC_RUNS" -steps "$WC_STEPS" -keys "$WC_KEYS" -rate "$WC_RATE" -latency "$WC_LATENCY" \
		-events "$WCS_EVENTS" -event-keys "$WCS_KEYS" -event-interval 15s
	WC_LOC="wandb+http://${WC_URL#http://}/bench/bench"
	wc_bound wandb-cloud-system "$WC_RUNS" $((WCS_EVENTS > 0 ? 1 : 0))
	for rep in $(seq "$WC_REPEAT"); do
		rm -rf "$WC/archive" "$WC/archive.ledger"
		measure wandb-cloud-system runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
			env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_LOC" "parquet:$WC/archive" --state "$WC/archive.ledger" -q
		log "server counters after runferry (the issue's size, system metrics):"; wc_stats
	done
	wc_serve_stop
fi
rm -rf "$WC/archive" "$WC/archive.ledger"

# Where the rate limit binds: runs with system metrics (one request each).
WCB_RUNS=${BENCH_WANDB_CLOUD_BIND_RUNS:-1000}
WCB_STEPS=${BENCH_WANDB_CLOUD_BIND_STEPS:-100}
WCB_EVENTS=${BENCH_WANDB_CLOUD_BIND_EVENTS:-10}
INPUT_CMDS+=("wandbserve -runs $WCB_RUNS -steps $WCB_STEPS -keys $WC_KEYS -rate $WC_RATE -latency $WC_LATENCY -events $WCB_EVENTS")
wc_serve_start -runs "$WCB_RUNS" -steps "$WCB_STEPS" -keys "$WC_KEYS" -rate "$WC_RATE" -latency "$WC_LATENCY" -events "$WCB_EVENTS"
WC_LOC="wandb+http://${WC_URL#http://}/bench/bench"
wc_bound wandb-cloud-bound "$WCB_RUNS" $((WCB_EVENTS > 0 ? 1 : 0))
for rep in $(seq "$WC_REPEAT"); do
	rm -rf "$WC/archive" "$WC/archive.ledger"
	measure wandb-cloud-bound runferry-copy "$rep" --verify "$PY" bench/py/parquet_points.py "$WC/archive" -- \
		env WANDB_API_KEY="$WC_KEY" "$BIN/runferry" copy "$WC_LOC" "parquet:$WC/archive" --state "$WC/archive.ledger" -q
	log "server counters after runferry (rate limit binding):"; wc_stats
done
rm -rf "$WC/archive" "$WC/archive.ledger"
wc_serve_stop
