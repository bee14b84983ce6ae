"""Print an MLflow server's model registry as MLflow's own client reads it.

Usage: python dump_registry.py TRACKING_URI [PREFIX]

Prints one JSON object: {"models": [...]} sorted by name, each with its
description, tags, aliases and versions (sorted by number: description,
tags, stage, status, source, run_id, creation_timestamp,
last_updated_timestamp), and "runs": for
every run id a version names, the run's runferry.origin tag and artifact URI.
With PREFIX, only the models whose name starts with it (a test's own, on a
server tests share).
"""
import json
import sys

from mlflow import MlflowClient

client = MlflowClient(sys.argv[1])
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
models, runs = [], {}
for listed in client.search_registered_models(max_results=1000):
    if not listed.name.startswith(prefix):
        continue
    m = client.get_registered_model(listed.name)
    versions = []
    for v in client.search_model_versions(f"name='{m.name}'", max_results=1000):
        versions.append({
            "version": int(v.version), "description": v.description or "", "tags": dict(v.tags),
            "stage": v.current_stage, "status": v.status, "source": v.source, "run_id": v.run_id or "",
            "creation_timestamp": v.creation_timestamp, "last_updated_timestamp": v.last_updated_timestamp,
        })
        if v.run_id and v.run_id not in runs:
            r = client.get_run(v.run_id)
            runs[v.run_id] = {"origin": r.data.tags.get("runferry.origin", ""), "artifact_uri": r.info.artifact_uri}
    versions.sort(key=lambda v: v["version"])
    models.append({"name": m.name, "description": m.description or "", "tags": dict(m.tags),
                   "aliases": dict(m.aliases), "creation_timestamp": m.creation_timestamp,
                   "last_updated_timestamp": m.last_updated_timestamp, "versions": versions})
models.sort(key=lambda m: m["name"])
print(json.dumps({"models": models, "runs": runs}, sort_keys=True))
