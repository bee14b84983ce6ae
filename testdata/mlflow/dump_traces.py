"""Print the traces of an MLflow server as MLflow's own client reads them.

Usage: python dump_traces.py TRACKING_URI [PREFIX]

Prints a JSON object: experiment name -> list of traces ordered by request
time and trace id, each with its info (trace id, request time, execution
duration, state, previews, tags, request metadata), the run it is linked
to (run name and id), and its spans as Span.to_dict gives them. With
PREFIX, only the experiments whose name starts with it, named without it
(a test's own, on a server tests share).
"""
import json
import sys

import mlflow
from mlflow import MlflowClient

mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient(sys.argv[1])
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
out = {}
for exp in client.search_experiments():
    if not exp.name.startswith(prefix):
        continue
    traces = client.search_traces(locations=[exp.experiment_id], max_results=500)
    items = []
    for t in traces:
        info = t.info
        run_id = info.trace_metadata.get("mlflow.sourceRun")
        items.append({
            "trace_id": info.trace_id,
            "request_time": info.request_time,
            "execution_duration": info.execution_duration,
            "state": str(info.state),
            "request_preview": info.request_preview,
            "response_preview": info.response_preview,
            "tags": dict(info.tags),
            "metadata": dict(info.trace_metadata),
            "run_id": run_id,
            "run_name": client.get_run(run_id).info.run_name if run_id else None,
            "spans": [s.to_dict() for s in t.data.spans],
        })
    items.sort(key=lambda x: (x["request_time"], x["trace_id"]))
    if items:
        out[exp.name[len(prefix):]] = items
print(json.dumps(out, sort_keys=True))
