"""Fill a real MLflow tracking server (MLFLOW_TRACKING_URI) with what the
direct store reader must read as the server shows it: params, tags, metric
histories with steps, NaN and infinities, repeated steps, a nested run, a
failed and an unfinished run, a dataset input, files in folders, a deleted run,
a deleted experiment, an MLflow 3 logged model with files and a metric, and a
registered model with tags, an alias and a deleted version."""
import math
import os
import sys
import tempfile

import mlflow
from mlflow.entities import Metric, Param, RunTag

client = mlflow.MlflowClient()
exp = client.create_experiment("store-reader", tags={"team": "vision", "mlflow.note.content": "an experiment"})
run = client.create_run(exp, run_name="parent", tags={"mlflow.user": "alice", "stage": "dev"})
rid = run.info.run_id
client.log_batch(rid, params=[Param("lr", "0.01"), Param("layers", "4")],
                 tags=[RunTag("mlflow.source.git.commit", "abc123")])
points = []
for step in range(0, 250):
    points.append(Metric("loss", 1.0 / (step + 1), 1700000000000 + step, step))
points += [Metric("acc", float("nan"), 1700000000001, 1), Metric("acc", math.inf, 1700000000002, 2),
           Metric("acc", -math.inf, 1700000000003, 3), Metric("acc", 0.5, 1700000000004, 3),
           Metric("acc", 0.25, 1700000000000, 3)]
for i in range(0, len(points), 1000):
    client.log_batch(rid, metrics=points[i:i + 1000])
with tempfile.TemporaryDirectory() as d:
    os.makedirs(os.path.join(d, "sub dir"))
    with open(os.path.join(d, "sub dir", "notes.txt"), "w") as f:
        f.write("hello\n")
    with open(os.path.join(d, "model.bin"), "wb") as f:
        f.write(bytes(range(256)) * 10)
    client.log_artifacts(rid, d)
ds = mlflow.data.from_numpy(__import__("numpy").arange(6).reshape(3, 2), source="s3://bucket/train.npy", name="train")
mlflow.set_experiment(experiment_id=exp)
with mlflow.start_run(run_id=rid):
    mlflow.log_input(ds, context="training")
model = client.create_logged_model(exp, name="net", source_run_id=rid, params={"depth": "3"},
                                   tags={"owner": "alice"}, model_type="torch")
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(b"\x00\x01" * 100)
    client.log_model_artifacts(model.model_id, d)
client.log_metric(rid, "val_acc", 0.9, step=5, timestamp=1700000009000, model_id=model.model_id)
client.finalize_logged_model(model.model_id, "READY")
client.set_terminated(rid, "FINISHED")
client.create_registered_model("store-model", tags={"task": "seg"}, description="a registered model")
mv = client.create_model_version("store-model", source=run.info.artifact_uri + "/model.bin", run_id=rid,
                                 tags={"validated": "yes"}, description="first")
client.create_model_version("store-model", source="s3://bucket/elsewhere/model", description="second")
client.set_registered_model_alias("store-model", "champion", mv.version)
client.delete_model_version("store-model", "2")

child = client.create_run(exp, run_name="child", tags={"mlflow.parentRunId": rid})
client.log_metric(child.info.run_id, "loss", 3.0, step=7)
client.set_terminated(child.info.run_id, "FAILED")
client.create_run(exp, run_name="unfinished")
gone = client.create_run(exp, run_name="deleted")
client.log_param(gone.info.run_id, "x", "1")
client.delete_run(gone.info.run_id)

old = client.create_experiment("deleted-experiment")
r = client.create_run(old, run_name="in-deleted")
client.log_metric(r.info.run_id, "m", 1.0)
client.set_terminated(r.info.run_id, "FINISHED")
client.delete_experiment(old)
print("populated", file=sys.stderr)
