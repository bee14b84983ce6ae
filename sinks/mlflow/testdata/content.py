"""MLflow content beyond runs, logged and read back with MLflow's own client.

Usage:
  python content.py log TRACKING_URI EXPERIMENT_NAME [REGISTERED_MODEL]
      logs a run with two dataset inputs and a run with an sklearn model
      (MLflow 3 logged model, with params, tags and a metric); prints the
      experiment id as JSON.
      The model run also logs a second logged model that failed
      (initialized with a param and a file, finalized FAILED). With
      REGISTERED_MODEL, the sklearn model is registered under that name
      (version 1, its source models:/<model id>).
  python content.py read TRACKING_URI EXPERIMENT_NAME [TRACKING_URI EXPERIMENT_NAME ...]
      (a JSON list, one element a pair, when given more than one pair: one
      process, one import of MLflow, for the source and the copy) prints, by run name (runs runferry superseded left out), the run's dataset inputs, logged models (id,
      name, type, status, params, tags, metrics, files with sha256) and the
      run's own files under mlflow-logged-models/ (sha256), as MLflow's
      client reads them, as JSON.
  python content.py predict TRACKING_URI MODEL_URI [TRACKING_URI MODEL_URI ...]
      loads MODEL_URI (models:/<id> or models:/<name>/<version>) with mlflow.pyfunc and prints its predictions
      for [[4.0], [10.0]] as JSON (a JSON list, one element a pair, when
      given more than one pair).
"""
import hashlib
import json
import os
import sys
import tempfile

import mlflow
import numpy as np
import pandas as pd


def log(uri, name, registered=None):
    mlflow.set_tracking_uri(uri)
    exp_id = mlflow.create_experiment(name)
    with mlflow.start_run(experiment_id=exp_id, run_name="with-inputs"):
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 0.5, step=1)
        mlflow.log_input(mlflow.data.from_numpy(np.arange(3), name="digits", source="s3://bucket/digits"), context="training")
        frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="frame", source="https://example.com/frame.csv"), context="eval")
    from sklearn.linear_model import LinearRegression

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([1.0, 3.0, 5.0, 7.0])
    model = LinearRegression().fit(X, y)
    with mlflow.start_run(experiment_id=exp_id, run_name="with-model"):
        mlflow.log_param("alpha", "0")
        # The requirements given, MLflow does not infer them (a child process that loads the
        # model again: about 5 s of CPU); the model's files are as real either way.
        import sklearn

        info = mlflow.sklearn.log_model(model, name="regressor", params={"fit_intercept": "True"}, tags={"kind": "linear"},
                                        registered_model_name=registered,
                                        pip_requirements=["scikit-learn==" + sklearn.__version__])
        mlflow.log_metric("r2", 1.0, model_id=info.model_id)
        mlflow.log_metric("loss", 0.25, step=3, model_id=info.model_id)
        failed = mlflow.initialize_logged_model(name="broken", params={"lr": "0.1"}, tags={"why": "oom"}, model_type="agent")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "partial.txt"), "w") as f:
                f.write("half a model\n")
            mlflow.MlflowClient().log_model_artifacts(failed.model_id, d)
        mlflow.finalize_logged_model(failed.model_id, "FAILED")
    print(json.dumps({"experiment": exp_id}))


def files_of(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            full = os.path.join(dirpath, n)
            with open(full, "rb") as f:
                out[os.path.relpath(full, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def read_one(uri, name):
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    out = {}
    for run in client.search_runs([exp.experiment_id], run_view_type=mlflow.entities.ViewType.ALL):
        if "mlflow.runferry.superseded" in run.data.tags or "runferry.superseded" in run.data.tags:
            continue  # an earlier copy runferry replaced
        inputs = [
            {"name": i.dataset.name, "digest": i.dataset.digest, "source_type": i.dataset.source_type,
             "source": i.dataset.source, "schema": i.dataset.schema or "", "profile": i.dataset.profile or "",
             "tags": {t.key: t.value for t in i.tags}}
            for i in run.inputs.dataset_inputs
        ]
        models = []
        for m in mlflow.search_logged_models(experiment_ids=[exp.experiment_id],
                                             filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list"):
            d = tempfile.mkdtemp()
            local = mlflow.artifacts.download_artifacts(artifact_uri=m.artifact_location, dst_path=d)
            models.append({
                "model_id": m.model_id, "name": m.name, "params": m.params,
                "model_type": m.model_type, "status": str(m.status),
                "tags": {k: v for k, v in m.tags.items() if not k.startswith(("runferry.", "mlflow.runferry."))},
                "metrics": sorted([[x.key, x.value, x.step] for x in (m.metrics or [])]),
                "files": files_of(local),
            })
        run_files = {}
        if any(f.path == "mlflow-logged-models" for f in client.list_artifacts(run.info.run_id)):
            d = tempfile.mkdtemp()
            mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="mlflow-logged-models", dst_path=d)
            run_files = files_of(d)
        out[run.info.run_name] = {"inputs": sorted(inputs, key=lambda i: i["name"]), "models": models, "run_files": run_files}
    return out


def predict_one(uri, model_uri):
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    return [float(v) for v in model.predict(np.array([[4.0], [10.0]]))]


def pairs(fn, args):
    """fn of each (TRACKING_URI, X) pair of args, printed as JSON: the one result, or a list."""
    if len(args) < 2 or len(args) % 2:
        sys.exit("want TRACKING_URI X pairs, got %r" % (args,))
    out = [fn(args[i], args[i + 1]) for i in range(0, len(args), 2)]
    print(json.dumps(out[0] if len(out) == 1 else out, sort_keys=True))


if __name__ == "__main__":
    if sys.argv[1] == "log":
        log(*sys.argv[2:])
    else:
        pairs({"read": read_one, "predict": predict_one}[sys.argv[1]], sys.argv[2:])
