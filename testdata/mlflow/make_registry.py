"""Create a model registry on an MLflow server with MLflow's own client.

Usage: python make_registry.py TRACKING_URI [--more] [--prefix=PREFIX] [--experiment=NAME] [--dump]

Writes one experiment "registry-src" with two runs that each hold a small
model folder, and the registered model "fraud-detector": version 1 from the
first run and version 2 from the second, with descriptions, tags, the alias
"champion" on version 2, version 1 in stage Archived and version 2 in
Production. A second model "empty-model" has no version. The experiment
also holds three traces (MLflow tracing spans). With --more, a third model
"churn-model" has three versions: from the first run's files, from the
second run's as a runs:/ URI, and from an external URI with no run; each
with its own description, tags and stage (Archived, Staging, None), and
the aliases legacy, prod and candidate. PREFIX, when given, starts every
registered model's name (registered model names are global to a server:
tests sharing one keep apart). NAME, when given, names the experiment instead
of "registry-src". Prints a JSON object with the run ids.
With --dump it then prints, on its last line, what dump_registry.py
TRACKING_URI PREFIX prints (that script, run in this process: MLflow
imported once for both, about 6 s of CPU less than a second process).
"""
import json
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient

uri = sys.argv[1]
prefix = next((a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--prefix=")), "")
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)
exp = mlflow.set_experiment(next((a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--experiment=")), "registry-src"))
runs = []
for i in (1, 2):
    with mlflow.start_run(run_name=f"train-{i}") as run:
        mlflow.log_param("lr", str(0.1 * i))
        mlflow.log_metric("auc", 0.8 + i / 100, step=1)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "MLmodel"), "w") as f:
                f.write(f"artifact_path: model\nflavors: {{}}\nrun: {i}\n")
            mlflow.log_artifacts(d, artifact_path="model")
        runs.append(run.info.run_id)

client.create_registered_model(prefix + "fraud-detector", tags={"team": "risk"}, description="Flags fraudulent payments.")
for i, rid in enumerate(runs, 1):
    src = client.get_run(rid).info.artifact_uri + "/model"
    v = client.create_model_version(prefix + "fraud-detector", src, run_id=rid, tags={"trained_on": f"2026-0{i}"},
                                    description=f"version {i}")
    assert v.version == str(i), v.version
client.set_model_version_tag(prefix + "fraud-detector", "2", "validated", "yes")
client.set_registered_model_alias(prefix + "fraud-detector", "champion", "2")
client.set_registered_model_alias(prefix + "fraud-detector", "first", "1")
client.transition_model_version_stage(prefix + "fraud-detector", "1", "Archived")
client.transition_model_version_stage(prefix + "fraud-detector", "2", "Production")
client.create_registered_model(prefix + "empty-model", description="nothing yet")
if "--more" in sys.argv[2:]:
    client.create_registered_model(prefix + "churn-model", tags={"owner": "ml-platform", "tier": "gøld"},
                                   description="Predicts churn.\nSecond line.")
    sources = [(client.get_run(runs[0]).info.artifact_uri + "/model", runs[0]),
               (f"runs:/{runs[1]}/model", runs[1]),
               ("s3://models-bucket/churn/3", None)]
    for i, (src, rid) in enumerate(sources, 1):
        v = client.create_model_version(prefix + "churn-model", src, run_id=rid, tags={"step": str(i), "data": f"2026-1{i}"},
                                        description=f"churn {i}" if i != 2 else "")
        assert v.version == str(i), v.version
    client.set_model_version_tag(prefix + "churn-model", "3", "external", "true")
    client.transition_model_version_stage(prefix + "churn-model", "1", "Archived")
    client.transition_model_version_stage(prefix + "churn-model", "2", "Staging")
    client.set_registered_model_alias(prefix + "churn-model", "legacy", "1")
    client.set_registered_model_alias(prefix + "churn-model", "prod", "2")
    client.set_registered_model_alias(prefix + "churn-model", "candidate", "3")
for i in range(3):
    with mlflow.start_span(name=f"predict-{i}") as span:
        span.set_inputs({"x": i})
        span.set_outputs({"y": 2 * i})
if hasattr(mlflow, "flush_trace_async_logging"):
    mlflow.flush_trace_async_logging()
print(json.dumps({"experiment_id": exp.experiment_id, "runs": runs}))
if "--dump" in sys.argv[2:]:
    import runpy

    sys.stdout.flush()
    dump = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dump_registry.py")
    sys.argv = [dump, uri, prefix]
    runpy.run_path(dump, run_name="__main__")
