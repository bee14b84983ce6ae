"""Fill an MLflow SQLite tracking store for bench/mlflowstore.sh: RUNS runs
of KEYS metric keys x STEPS steps, 10 params and 5 tags each. The store,
experiment and runs are made by MLflow's own SqlAlchemyStore; the metric
rows (and latest_metrics, as MLflow keeps it: each key's point of the
highest step, then time, then value) are inserted in one transaction, since
log_batch takes minutes for this many points on a busy 2-core machine.
Usage: mlflow_store.py DB_PATH ARTIFACT_ROOT RUNS KEYS STEPS"""
import sqlite3
import sys

from mlflow.entities import Param, RunStatus, RunTag
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

db, root, runs, keys, steps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
store = SqlAlchemyStore("sqlite:///" + db, root)
exp = store.create_experiment("bench-store")
t0 = 1_700_000_000_000
ids = []
for r in range(runs):
    run = store.create_run(exp, user_id="bench", start_time=t0 + r, tags=[], run_name=f"run-{r:04d}")
    rid = run.info.run_id
    store.log_batch(rid, metrics=[], params=[Param(f"p{i}", str(i * r)) for i in range(10)],
                    tags=[RunTag(f"t{i}", f"v{i}") for i in range(5)])
    store.update_run_info(rid, RunStatus.FINISHED, t0 + steps * 10, None)
    ids.append(rid)
store.engine.dispose()

con = sqlite3.connect(db)
with con:
    for r, rid in enumerate(ids):
        rows = [(f"m{k:02d}", (s * 31 + k * 7 + r) % 1000 / 7.0, t0 + s * 10, rid, s, False)
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
print(f"{runs} runs x {keys} keys x {steps} steps in {db}", file=sys.stderr)
