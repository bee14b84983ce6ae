"""Fill an MLflow SQLite tracking store and its artifact root for the
MLflow-source part of bench/sync.sh: RUNS FINISHED runs of KEYS metric keys
x STEPS steps, 10 params and 5 tags each, and four small files in three
artifact directories (config.yaml, model/MLmodel, model/weights.bin,
plots/loss.csv), as a server started with --serve-artifacts and
--artifacts-destination ARTIFACT_DIR holds them. The store, experiment and
runs are made by MLflow's own SqlAlchemyStore (artifact root
mlflow-artifacts:/, the server's default with --serve-artifacts); the metric
rows (and latest_metrics, as MLflow keeps it) are inserted in one
transaction, as bench/py/mlflow_store.py does, and the files are written
where the server's proxy serves them.
Usage: mlflow_src_store.py DB_PATH ARTIFACT_DIR RUNS KEYS STEPS"""
import os
import sqlite3
import sys

from mlflow.entities import Param, RunStatus, RunTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

db, art, runs, keys, steps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
store = SqlAlchemyStore("sqlite:///" + db, "mlflow-artifacts:/")
exp = store.create_experiment("bench-mlflow-source")
t0 = 1_700_000_000_000
ids = []
for r in range(runs):
    run = store.create_run(exp, user_id="bench", start_time=t0 + r * 1000, tags=[], run_name=f"run-{r:05d}")
    rid = run.info.run_id
    store.log_batch(rid, metrics=[], params=[Param(f"p{i}", str(i * r)) for i in range(10)],
                    tags=[RunTag(f"t{i}", f"v{i}") for i in range(5)])
    store.update_run_info(rid, RunStatus.FINISHED, t0 + r * 1000 + steps * 10, None)
    ids.append(rid)
    prefix = "mlflow-artifacts:/"
    uri = run.info.artifact_uri
    assert uri.startswith(prefix), uri
    root = os.path.join(art, uri[len(prefix):].lstrip("/"))
    for rel, body in (("config.yaml", f"lr: 0.0{r % 9 + 1}\nseed: {r}\n"),
                      ("model/MLmodel", f"flavors:\n  python_function: {{}}\nrun_id: {rid}\n"),
                      ("model/weights.bin", "w" * (256 + r % 100)),
                      ("plots/loss.csv", "".join(f"{s},{1 / (s + 1):.6f}\n" for s in range(20)))):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(body)
store.engine.dispose()

con = sqlite3.connect(db)
with con:
    for r, rid in enumerate(ids):
        rows = [(f"m{k:02d}", (s * 31 + k * 7 + r) % 1000 / 7.0, t0 + r * 1000 + s * 10, rid, s, False)
                for s in range(steps) for k in range(keys)]
        con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", rows)
        latest = {}
        for row in rows:
            cur = latest.get(row[0])
            if cur is None or (row[4], row[2], row[1]) > (cur[4], cur[2], cur[1]):
                latest[row[0]] = row
        con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)",
                        [(k, v, t, s, n, u) for (k, v, t, u, s, n) in latest.values()])
con.close()
print(f"{runs} runs x {keys} keys x {steps} steps, 4 files each, in {db} and {art}", file=sys.stderr)
