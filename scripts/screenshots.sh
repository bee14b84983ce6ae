#!/usr/bin/env bash
# Renders what a W&B run copied into MLflow looks like in MLflow's web UI:
# starts a real MLflow server from the test venv (sqlite, a temporary
# folder), copies the W&B fixtures into it with the runferry binary, and
# screenshots the migrated run fxa00001 (overview, model metrics) with
# headless Chromium into OUT (docs/images). The system metrics and the image
# grid are those of a run scripts/screenshot_run.py writes with the wandb
# SDK (the fixtures' 8-pixel images are too small to see, and MLflow shows
# the image grid above the system metrics). Chromium is driven by
# scripts/cdp_screenshot.py (one Chromium for all four pictures, each in a
# browser context of its own), which takes each picture once the page and its
# images have loaded, and fails when a request of the page failed or the
# page says "Failed to load".
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
# --cors-allowed-origins: MLflow refuses POST requests (the UI's run
# searches, e.g. for a run's child runs) from an origin that is not
# localhost unless it is listed.
# MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no job runner and its eight huey
# workers, which the pages shown do not need.
# The command is MLflow's own `mlflow server`, run through the tests' launcher
# internal/testenv/mlflowserve.py: given beforehand the environment `mlflow
# server` builds for its uvicorn child (the MLFLOW_* variables below, as
# internal/testenv does), it serves MLflow's app in its own process instead of
# a child that imports MLflow a second time (about 5 s of CPU less; its log
# says "testenv: uvicorn in process").
db="sqlite:///$work/mlflow.db"
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_TRACKING_URI=$db MLFLOW_REGISTRY_URI=$db \
	MLFLOW_SERVER_ALLOWED_HOSTS="$host:$port,$host" MLFLOW_SERVER_CORS_ALLOWED_ORIGINS="$url" \
	MLFLOW_SERVER_X_FRAME_OPTIONS=SAMEORIGIN MLFLOW_ENABLE_WORKSPACES=false \
	MLFLOW_ENABLE_TELEMETRY=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
	setsid "$venv/bin/python" "$root/internal/testenv/mlflowserve.py" server --host "$host" --port "$port" --workers 1 \
	--allowed-hosts "$host:$port,$host" --cors-allowed-origins "$url" \
	--backend-store-uri "$db" --artifacts-destination "$work/artifacts" \
	>"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 120); do
	curl -sf "$url/health" >/dev/null && break
	sleep 1
done
curl -sf "$url/health" >/dev/null || { echo "screenshots: MLflow did not start:" >&2; tail -20 "$work/server.log" >&2; exit 1; }

"$bin" copy "wandb:$root/testdata/wandb/fixtures?crashed-after=1ns" "mlflow+$url" --no-state --accept-gaps >"$work/copy.log" 2>&1 ||
	{ echo "screenshots: copy failed:" >&2; cat "$work/copy.log" >&2; exit 1; }
"$venv/bin/python" "$root/scripts/screenshot_run.py" "$work/shots" >"$work/shots.log" 2>&1 ||
	{ echo "screenshots: writing the W&B run with images failed:" >&2; cat "$work/shots.log" >&2; exit 1; }
"$bin" copy "wandb:$work/shots/wandb" "mlflow+$url" --no-state >>"$work/copy.log" 2>&1 ||
	{ echo "screenshots: copy failed:" >&2; cat "$work/copy.log" >&2; exit 1; }

# run_ids ORIGIN-SUFFIX: prints the experiment and run id of the run whose
# runferry.origin ends with ORIGIN-SUFFIX.
run_ids() {
	curl -sf -X POST -H 'Content-Type: application/json' \
		-d '{"experiment_ids":[],"max_results":1000,"filter":""}' "$url/api/2.0/mlflow/experiments/search" |
		"$venv/bin/python" -c '
import json, sys, urllib.request
url, suffix = sys.argv[1], sys.argv[2]
for e in json.load(sys.stdin)["experiments"]:
    req = urllib.request.Request(url + "/api/2.0/mlflow/runs/search", method="POST",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"experiment_ids": [e["experiment_id"]], "max_results": 1000}).encode())
    for r in json.load(urllib.request.urlopen(req)).get("runs", []):
        tags = {t["key"]: t["value"] for t in r["data"].get("tags", [])}
        if tags.get("runferry.origin", "").endswith(suffix):
            print(e["experiment_id"], r["info"]["run_id"])
            sys.exit(0)
sys.exit("no run " + suffix + " in MLflow")
' "$url" "$1"
}
# The run fxa00001 (a table, system metrics, config) and the image run.
read -r exp run < <(run_ids /fxa00001)
read -r iexp irun < <(run_ids /shots0001)
[ -n "$run" ] && [ -n "$irun" ] || { echo "screenshots: the copied runs were not found" >&2; exit 1; }

mkdir -p "$out"
# One Chromium takes the four pictures (cdp_screenshot.py --shots), each in
# a browser context of its own.
shots=$work/shots.tsv
: >"$shots"
shot() { # shot NAME URL-FRAGMENT WIDTH,HEIGHT WAIT-FOR-JS
	printf '%s\t%s\t%s\t%s\n' "$out/$1.png" "$url/#/$2" "$3" "$4" >>"$shots"
}
# MLflow 3 opens experiments in its GenAI view unless asked for the
# machine-learning one.
base="experiments/$exp/runs/$run"
ml="workflowType=machine_learning"
charts='document.querySelectorAll(".js-plotly-plot").length >= 2'
image='Array.from(document.images).some(i => i.complete && i.naturalWidth >= 128)'
shot mlflow-run-overview "$base?$ml" 1400,900 'document.body.innerText.includes("About this run")'
shot mlflow-run-model-metrics "$base/model-metrics?$ml" 1400,900 "$charts"
shot mlflow-run-system-metrics "experiments/$iexp/runs/$irun/system-metrics?$ml" 1400,1300 "$charts && $image"
shot mlflow-run-images "experiments/$iexp/runs/$irun/model-metrics?$ml" 1400,1000 "$image"
"$venv/bin/python" "$root/scripts/cdp_screenshot.py" --chromium "$chromium" --shots "$shots" --timeout 120 \
	--ignore /mlflow/users/current --fail-on-text "Failed to load" >"$work/chromium.log" 2>&1 ||
	{ echo "screenshots: chromium failed:" >&2; tail -20 "$work/chromium.log" >&2; exit 1; }
cat "$work/chromium.log"
