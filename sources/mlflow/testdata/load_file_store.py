"""Loads MLflow file stores (mlruns directories) into a running MLflow server.

Usage: python load_file_store.py TRACKING_URI PREFIX OUT_JSON SAMPLE_DIR...

Every mlruns directory found under each SAMPLE_DIR is parsed directly
(meta.yaml, params/, tags/, metrics/, artifacts/, inputs/, outputs/,
datasets/, models/; MLflow's own file-store reader refuses some old or odd
stores) and re-created on the server with MLflow's Python client
(MlflowClient against the server URL):

- experiments, as PREFIX + SAMPLE + "/" + name ("(id)" appended when a name
  repeats inside one sample); those under .trash/ or marked deleted are
  deleted after their runs are written (MLflow's SQL store then marks
  their runs deleted too, which expected.json says);
- runs with their start time, run name, tags, params, status and end time
  (set_terminated; a RUNNING run keeps no end time); mlflow.parentRunId is
  remapped to the new run id; mlflow.user is set from the run's user_id
  when the run has no such tag (MlflowClient takes the run's user from that
  tag); runs marked deleted are deleted last;
- every metric line (3 columns, or 4 with a model id), duplicates included,
  through log_batch; the SQL store keeps one row per distinct
  (key, timestamp, step, value), which is what expected.json lists;
- dataset inputs (log_inputs) and MLflow 3 LoggedModels (create, params,
  tags, metrics with their model id, finalize, run outputs);
- artifact files that exist (log_artifact, same relative path).

After loading, every run's metric histories are read back with the client
and compared with what was sent (a sanity check of the loader itself).
OUT_JSON receives what was loaded, run by run, for the Go test to compare
with what runferry's MLflow source reads.
"""
import json
import os
import sys

import yaml
from mlflow.entities import (Dataset, DatasetInput, InputTag, LoggedModelOutput,
                             LoggedModelStatus, Metric, Param, RunTag)
from mlflow.tracking import MlflowClient

STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


def read_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def read_kv(d):
    """params/ or tags/: one file per key (keys may hold '/'), raw content."""
    out = {}
    if not os.path.isdir(d):
        return out
    for root, _, files in os.walk(d):
        for name in files:
            p = os.path.join(root, name)
            with open(p, encoding="utf-8") as f:
                out[os.path.relpath(p, d).replace(os.sep, "/")] = f.read()
    return out


def read_metrics(d):
    """metrics/: lines 'timestamp value step [model_id]', every line kept."""
    out = []
    if not os.path.isdir(d):
        return out
    for root, _, files in os.walk(d):
        for name in files:
            p = os.path.join(root, name)
            key = os.path.relpath(p, d).replace(os.sep, "/")
            with open(p, encoding="utf-8") as f:
                for line in f:
                    cols = line.split()
                    if not cols:
                        continue
                    ts, value = int(cols[0]), float(cols[1])
                    step = int(cols[2]) if len(cols) > 2 else 0
                    extra = cols[3] if len(cols) > 3 else None
                    out.append((key, ts, value, step, extra))
    return out


def files_under(d):
    out = []
    for root, _, files in os.walk(d):
        for name in files:
            p = os.path.join(root, name)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(os.path.relpath(p, d).replace(os.sep, "/"))
    return sorted(out)


def chunks(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def experiments_of(mlruns):
    """(dir, meta, deleted) for each experiment directory."""
    out = []
    for base, trashed in ((mlruns, False), (os.path.join(mlruns, ".trash"), True)):
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            d = os.path.join(base, name)
            meta = os.path.join(d, "meta.yaml")
            if name.startswith(".") or not os.path.isfile(meta):
                continue
            m = read_yaml(meta)
            if "experiment_id" not in m:
                continue
            out.append((d, m, trashed or m.get("lifecycle_stage") == "deleted"))
    return out


def runs_of(exp_dir):
    out = []
    for name in sorted(os.listdir(exp_dir)):
        meta = os.path.join(exp_dir, name, "meta.yaml")
        if os.path.isfile(meta):
            m = read_yaml(meta)
            if m.get("run_id") or m.get("run_uuid"):
                out.append((os.path.join(exp_dir, name), m))
    return out


def main():
    uri, prefix, out_path, samples = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    client = MlflowClient(tracking_uri=uri)
    result = {"experiments": [], "runs": []}
    for sample in samples:
        slug = os.path.basename(os.path.normpath(sample))
        stores = sorted(r for r, dirs, _ in os.walk(sample) if os.path.basename(r) == "mlruns")
        names = set()
        for mlruns in stores:
            new_run = {}  # old run id -> new run id, within one store
            runs = []
            exps = []
            for exp_dir, em, deleted in experiments_of(mlruns):
                name = f"{slug}/{em.get('name') or em['experiment_id']}"
                if name in names:
                    name += f" ({em['experiment_id']})"
                names.add(name)
                exp_id = client.create_experiment(prefix + name)
                exps.append((exp_id, deleted))
                result["experiments"].append({"id": exp_id, "name": name, "deleted": deleted, "sample": slug})
                datasets = {}
                ds_dir = os.path.join(exp_dir, "datasets")
                if os.path.isdir(ds_dir):
                    for ds in os.listdir(ds_dir):
                        p = os.path.join(ds_dir, ds, "meta.yaml")
                        if os.path.isfile(p):
                            datasets[ds] = read_yaml(p)
                models = {}
                models_dir = os.path.join(exp_dir, "models")
                if os.path.isdir(models_dir):
                    for mid in sorted(os.listdir(models_dir)):
                        p = os.path.join(models_dir, mid, "meta.yaml")
                        if os.path.isfile(p):
                            models[mid] = (os.path.join(models_dir, mid), read_yaml(p))
                for run_dir, rm in runs_of(exp_dir):
                    runs.append(load_run(client, exp_id, run_dir, rm, datasets, new_run))
                # LoggedModels, once their source runs exist.
                for mid, (mdir, mm) in models.items():
                    src_run = new_run.get(mm.get("source_run_id") or "")
                    lm = client.create_logged_model(exp_id, name=mm.get("name"), source_run_id=src_run,
                                                    tags=read_kv(os.path.join(mdir, "tags")) or None,
                                                    params=read_kv(os.path.join(mdir, "params")) or None,
                                                    model_type=mm.get("model_type"))
                    for key, ts, value, step, run_id in read_metrics(os.path.join(mdir, "metrics")):
                        target = new_run.get(run_id or "", src_run)
                        client.log_batch(target, metrics=[Metric(key, value, ts, step, model_id=lm.model_id)])
                        for r in runs:
                            if r["id"] == target:
                                r["_sent"].append((key, ts, value, step))
                    client.finalize_logged_model(lm.model_id, LoggedModelStatus.READY)
                    for r in runs:
                        if r["old_id"] == mm.get("source_run_id"):
                            r["models"] += 1
                            step = 0
                            op = os.path.join(r["_dir"], "outputs", mid, "meta.yaml")
                            if os.path.isfile(op):
                                step = int(read_yaml(op).get("step") or 0)
                            client.log_outputs(r["id"], [LoggedModelOutput(lm.model_id, step)])
            # Parents, once every run of the store exists; then deletions.
            for r in runs:
                old = r["tags"].get("mlflow.parentRunId")
                if old is not None:
                    r["tags"]["mlflow.parentRunId"] = new_run.get(old, old)
                    client.set_tag(r["id"], "mlflow.parentRunId", r["tags"]["mlflow.parentRunId"])
            for r in runs:
                if r["deleted"]:
                    client.delete_run(r["id"])
            for exp_id, deleted in exps:
                if deleted:
                    client.delete_experiment(exp_id)
                    # The SQL store marks every run of the experiment deleted too.
                    for r in runs:
                        r["deleted"] = r["deleted"] or r["experiment"] == exp_id
            for r in runs:
                check_history(client, r)
                del r["_sent"], r["_dir"]
                result["runs"].append(r)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(json.dumps({"experiments": len(result["experiments"]), "runs": len(result["runs"])}))


def load_run(client, exp_id, run_dir, rm, datasets, new_run):
    old_id = rm.get("run_id") or rm.get("run_uuid")
    tags = read_kv(os.path.join(run_dir, "tags"))
    params = read_kv(os.path.join(run_dir, "params"))
    if "mlflow.user" not in tags and rm.get("user_id"):
        tags["mlflow.user"] = str(rm["user_id"])
    run_name = rm.get("run_name") or tags.get("mlflow.runName") or None
    create_tags = {k: v for k, v in tags.items() if k != "mlflow.parentRunId"}
    run = client.create_run(exp_id, start_time=rm.get("start_time"), tags=create_tags, run_name=run_name)
    rid = run.info.run_id
    new_run[old_id] = rid
    for ps in chunks([Param(k, v) for k, v in sorted(params.items())], 100):
        client.log_batch(rid, params=ps)
    lines = read_metrics(os.path.join(run_dir, "metrics"))
    for ms in chunks([Metric(k, v, ts, st) for k, ts, v, st, _ in lines], 1000):
        client.log_batch(rid, metrics=ms)
    inputs = []
    in_dir = os.path.join(run_dir, "inputs")
    if os.path.isdir(in_dir):
        for name in sorted(os.listdir(in_dir)):
            p = os.path.join(in_dir, name, "meta.yaml")
            if not os.path.isfile(p):
                continue
            im = read_yaml(p)
            ds = datasets.get(im.get("source_id"))
            if im.get("source_type") != "DATASET" or ds is None:
                continue
            itags = {str(k): str(v) for k, v in (im.get("tags") or {}).items()}
            inputs.append({"name": ds["name"], "digest": ds["digest"], "source_type": ds.get("source_type", ""),
                           "source": ds.get("source", ""), "tags": itags})
            client.log_inputs(rid, datasets=[DatasetInput(
                Dataset(ds["name"], ds["digest"], ds.get("source_type", ""), ds.get("source", ""),
                        ds.get("schema"), ds.get("profile")),
                [InputTag(k, v) for k, v in itags.items()])])
    art_dir = os.path.join(run_dir, "artifacts")
    files = files_under(art_dir) if os.path.isdir(art_dir) else []
    for rel in files:
        sub = os.path.dirname(rel)
        client.log_artifact(rid, os.path.join(art_dir, rel), artifact_path=sub or None)
    status = STATUS.get(int(rm.get("status") or 1), "RUNNING")
    end = rm.get("end_time")
    if status in ("FINISHED", "FAILED", "KILLED"):
        client.set_terminated(rid, status, end_time=end)
    elif status == "SCHEDULED":
        client.update_run(rid, status="SCHEDULED")
        end = None
    else:
        end = None  # a RUNNING run has no end time
    got = client.get_run(rid).info
    return {
        "id": rid, "old_id": old_id, "experiment": exp_id, "name": got.run_name,
        "user": got.user_id, "status": status, "start": rm.get("start_time"), "end": end,
        "deleted": rm.get("lifecycle_stage") == "deleted",
        "params": params, "tags": tags, "inputs": inputs, "models": 0,
        "files": [{"path": f, "local": os.path.abspath(os.path.join(art_dir, f))} for f in files],
        "_sent": [(k, ts, v, st) for k, ts, v, st, _ in lines], "_dir": run_dir,
    }


def check_history(client, r):
    """Reads every metric back with MLflow's client: the SQL store keeps one
    row per distinct (key, timestamp, step, value)."""
    want = sorted(set(r["_sent"]))
    got = []
    for key in sorted({m[0] for m in want}):
        for m in client.get_metric_history(r["id"], key):
            got.append((m.key, m.timestamp, m.value, m.step))
    got.sort()
    if got != want:
        raise SystemExit(f"run {r['id']}: server holds {len(got)} points, loader sent {len(want)} distinct")
    r["metrics"] = [[k, ts, repr(v), st] for k, ts, v, st in want]
    r["sent_lines"] = len(r["_sent"])


if __name__ == "__main__":
    main()
