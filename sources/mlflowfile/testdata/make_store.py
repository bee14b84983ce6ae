"""Fills an MLflow file store with MLflow's own Python client, for the file
store source's tests: what a team's runs leave in mlruns/.

Usage: python make_store.py TRACKING_URI [--models]

TRACKING_URI is a server serving the store (http://...) or the store itself
(file:///...). With --models (through a server) it also logs an MLflow 3
logged model with metrics linked to a dataset, registers it in the model
registry with an alias and tags, and logs a trace into an experiment that
holds nothing else. Prints what it made as JSON on its last line.
"""
import json
import math
import os
import sys
import tempfile

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

uri = sys.argv[1]
models = "--models" in sys.argv[2:]
mlflow.set_tracking_uri(uri)
client = MlflowClient()
out = {}

exp = mlflow.create_experiment("training runs", tags={"team": "vision", "mlflow.note.content": "the notes"})
out["experiment"] = exp
with mlflow.start_run(experiment_id=exp, run_name="parent run") as parent:
    mlflow.log_params({"lr": "0.001", "layers": 4, "optimizer/name": "adam"})
    mlflow.set_tags({"stage": "dev", "mlflow.note.content": "parent notes", "nested/tag": "x"})
    for step in range(30):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000 + step * 10)
        mlflow.log_metric("train/acc", step / 30.0, step=step, timestamp=1_700_000_000_000 + step * 10)
    # the same point twice (the file store keeps both), values Python writes as nan/inf/-inf
    mlflow.log_metric("loss", 0.5, step=2, timestamp=1_700_000_000_020)
    mlflow.log_metric("odd", math.nan, step=0, timestamp=1_700_000_000_000)
    mlflow.log_metric("odd", math.inf, step=1, timestamp=1_700_000_000_001)
    mlflow.log_metric("odd", -math.inf, step=2, timestamp=1_700_000_000_002)
    mlflow.log_metric("odd", -1e-300, step=-3, timestamp=1_700_000_000_003)
    mlflow.log_input(mlflow.data.from_numpy(np.arange(6).reshape(3, 2), name="digits", source="s3://bucket/digits"), context="training")
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "notes with space.txt"), "w") as f:
        f.write("hello\n")
    mlflow.log_artifact(os.path.join(d, "notes with space.txt"), artifact_path="docs dir")
    mlflow.log_text("line\n" * 100, "logs/output.log")
    with mlflow.start_run(experiment_id=exp, run_name="child", nested=True) as child:
        mlflow.log_metric("acc", 0.9, step=1)
out["parent"], out["child"] = parent.info.run_id, child.info.run_id

with mlflow.start_run(experiment_id=exp, run_name="no metrics") as quiet:
    mlflow.log_param("only", "params")
out["quiet"] = quiet.info.run_id

failed = client.create_run(exp, run_name="failed")
client.log_metric(failed.info.run_id, "loss", 3.0, step=0)
client.set_terminated(failed.info.run_id, status="FAILED")

unfinished = client.create_run(exp, run_name="still running")  # never ended
client.log_metric(unfinished.info.run_id, "loss", 2.0, step=0)
out["unfinished"] = unfinished.info.run_id

gone = client.create_run(exp, run_name="deleted run")
client.log_metric(gone.info.run_id, "loss", 9.0, step=0)
client.set_terminated(gone.info.run_id)
client.delete_run(gone.info.run_id)
out["deleted_run"] = gone.info.run_id

old = mlflow.create_experiment("old experiment")
with mlflow.start_run(experiment_id=old, run_name="in a deleted experiment"):
    mlflow.log_metric("loss", 1.5, step=0)
client.delete_experiment(old)
out["deleted_experiment"] = old

if models:
    import sklearn
    import sklearn.linear_model

    with mlflow.start_run(experiment_id=exp, run_name="with model") as mrun:
        ds = mlflow.data.from_numpy(np.arange(4).reshape(2, 2), name="eval_set", source="s3://bucket/eval")
        mlflow.log_input(ds, context="eval")
        m = sklearn.linear_model.LinearRegression().fit([[0], [1], [2]], [0, 1, 2])
        # The requirements given, MLflow does not infer them (a child process that
        # imports MLflow and loads the model again: several s of CPU); the model's
        # files are as real either way, and both readers see the same ones.
        info = mlflow.sklearn.log_model(m, name="reg", params={"fit_intercept": "True"},
                                        pip_requirements=["scikit-learn==" + sklearn.__version__])
        mlflow.log_metric("mse", 0.01, step=0, model_id=info.model_id, dataset=ds)
        # MLflow's file store reads step 0 for every point logged against a
        # dataset (its 5-field lines): both at step 0, so the server is right.
        mlflow.log_metric("mse", 0.005, step=0, model_id=info.model_id, dataset=ds)
    out["model_run"], out["model"] = mrun.info.run_id, info.model_id
    mv = mlflow.register_model(f"models:/{info.model_id}", "regressor", tags={"owner": "ml"})
    client.set_registered_model_alias("regressor", "champion", mv.version)
    client.update_registered_model("regressor", description="a small regressor")
    client.set_model_version_tag("regressor", mv.version, "validated", "yes")

    traces = mlflow.create_experiment("traces only")
    mlflow.set_experiment(experiment_id=traces)

    @mlflow.trace
    def answer(q):
        return q.upper()

    answer("hello")
    out["traces_experiment"] = traces

print(json.dumps(out))
