"""Logs native MLflow runs with the real Python client, for the source's tests.

Usage: python native.py TRACKING_URI EXPERIMENT_NAME; prints the run ids as JSON.
"""
import json
import os
import sys
import tempfile

import mlflow
import numpy as np

uri, name = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
exp_id = mlflow.create_experiment(name, tags={"team": "native"})
with mlflow.start_run(experiment_id=exp_id, run_name="parent") as parent:
    mlflow.log_params({"lr": "0.1", "layers": 3})
    mlflow.set_tags({"stage": "test", "mlflow.note.content": "a note"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000 + step)
    mlflow.log_metric("loss", 0.5, step=2, timestamp=1_699_999_999_000)  # older time, later in the log
    mlflow.log_input(mlflow.data.from_numpy(np.arange(3), name="digits", source="s3://bucket/digits"), context="training")
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("hello\n")
    mlflow.log_artifact(os.path.join(d, "notes.txt"), artifact_path="docs")
    with mlflow.start_run(experiment_id=exp_id, run_name="child", nested=True) as child:
        mlflow.log_metric("acc", 0.9, step=1, timestamp=1_700_000_000_100)
# The parent's dataset inputs as MLflow's own client reads them back.
inputs = [
    {"name": i.dataset.name, "digest": i.dataset.digest, "source_type": i.dataset.source_type,
     "source": i.dataset.source, "schema": i.dataset.schema or "", "profile": i.dataset.profile or "",
     "tags": {t.key: t.value for t in i.tags}}
    for i in mlflow.get_run(parent.info.run_id).inputs.dataset_inputs
]
print(json.dumps({"experiment": exp_id, "parent": parent.info.run_id, "child": child.info.run_id, "inputs": inputs}))
