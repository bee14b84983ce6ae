#!/usr/bin/env bash
# Renders what a W&B run copied into MLflow looks like in MLflow's web UI:
# starts a real MLflow server from the test venv (sqlite, a temporary
# folder), copies the W&B fixtures into it with the runferry binary, and
# screenshots the migrated run fxa00001 (overview, model metrics, system
# metrics, image grid) with headless Chromium into OUT (docs/images).
#
# Usage: scripts/screenshots.sh [OUT]
# Environment: RUNFERRY_VENV (default .venv), CHROMIUM (default
# /usr/bin/chromium), RUNFERRY (a runferry binary; built when unset),
# SCREENSHOT_HOST (the address the server listens on).
# Exits 2 when Chromium or the venv is missing, 1 on any other failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/docs/images}
venv=${RUNFERRY_VENV:-$root/.venv}
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "screenshots: no Chromium at $chromium (apt-get install chromium)" >&2; exit 2; }
[ -x "$venv/bin/mlflow" ] || { echo "screenshots: no mlflow in $venv (make venv)" >&2; exit 2; }

work=$(mktemp -d)
server=
cleanup() {
	if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

bin=${RUNFERRY:-}
if [ -z "$bin" ]; then
	bin=$work/runferry
	(cd "$root" && CGO_ENABLED=0 go build -o "$bin" ./cmd/runferry)
fi

# On a loopback address MLflow's UI opens its assistant panel over half the
# page; a non-loopback address of this host (hostname -I) avoids that.
host=${SCREENSHOT_HOST:-$(hostname -I 2>/dev/null | awk '{print $1}')}
host=${host:-127.0.0.1}
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://$host:$port
# setsid: the server and its workers form one process group, ended together.
setsid "$venv/bin/mlflow" server --host "$host" --port "$port" --workers 1 --allowed-hosts "$host:$port,$host" \
	--backend-store-uri "sqlite:///$work/mlflow.db" --artifacts-destination "$work/artifacts" \
	>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 120); do
	curl -sf "$url/health" >/dev/null && break
	sleep 1
done
curl -sf "$url/health" >/dev/null || { echo "screenshots: MLflow did not start:" >&2; tail -20 "$work/server.log" >&2; exit 1; }

"$bin" copy "wandb:$root/testdata/wandb/fixtures?crashed-after=1ns" "mlflow+$url" --no-state >"$work/copy.log" 2>&1 ||
	{ echo "screenshots: copy failed:" >&2; cat "$work/copy.log" >&2; exit 1; }

# The run fxa00001 (images, a table, system metrics) and its experiment.
read -r exp run < <(curl -sf -X POST -H 'Content-Type: application/json' \
	-d '{"experiment_ids":[],"max_results":1000,"filter":""}' "$url/api/2.0/mlflow/experiments/search" |
	"$venv/bin/python" -c '
import json, sys, urllib.request
url = sys.argv[1]
for e in json.load(sys.stdin)["experiments"]:
    req = urllib.request.Request(url + "/api/2.0/mlflow/runs/search", method="POST",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"experiment_ids": [e["experiment_id"]], "max_results": 1000}).encode())
    for r in json.load(urllib.request.urlopen(req)).get("runs", []):
        tags = {t["key"]: t["value"] for t in r["data"].get("tags", [])}
        if tags.get("runferry.origin", "").endswith("/fxa00001"):
            print(e["experiment_id"], r["info"]["run_id"])
            sys.exit(0)
sys.exit("no run fxa00001 in MLflow")
' "$url")

mkdir -p "$out"
shot() { # shot NAME URL-FRAGMENT [WIDTH,HEIGHT]
	local profile
	profile=$(mktemp -d "$work/chromium.XXXXXX")
	timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$profile" --hide-scrollbars --window-size="${3:-1400,900}" \
		--run-all-compositor-stages-before-draw --virtual-time-budget=20000 \
		--screenshot="$out/$1.png" "$url/#/$2" >"$work/chromium-$1.log" 2>&1 ||
		{ echo "screenshots: chromium failed on $1:" >&2; tail -20 "$work/chromium-$1.log" >&2; exit 1; }
	echo "$out/$1.png"
}
# MLflow 3 opens experiments in its GenAI view unless asked for the
# machine-learning one.
base="experiments/$exp/runs/$run"
ml="workflowType=machine_learning"
shot mlflow-run-overview "$base?$ml"
shot mlflow-run-model-metrics "$base/model-metrics?$ml"
shot mlflow-run-system-metrics "$base/system-metrics?$ml"
shot mlflow-run-images "$base/model-metrics?$ml" 1400,1500
