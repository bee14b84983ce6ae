"""Fills an MLflow tracking server with runs the way a user's training
scripts would (MLflow's own Python client, log_batch of 1000 metrics), as
the source of the MLflow-to-MLflow benchmark. Not timed.

Every run: 20 metric keys x STEPS steps (values from a seeded generator,
timestamps one second apart), 5 params, 3 tags, status FINISHED.

Usage: python mlflow_populate.py URL EXPERIMENT RUNS STEPS
Prints {"runs", "points", "sum"} as one JSON line.
"""
import json
import random
import sys

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

KEYS = 20


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    url, name, runs, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    client = MlflowClient(tracking_uri=url)
    exp = client.create_experiment(name)
    rng = random.Random(42)
    points, total = 0, 0.0
    t0 = 1717243200000
    for r in range(runs):
        run = client.create_run(exp, run_name="train-%03d" % r, start_time=t0 + r * 3600_000,
                                tags={"team": "bench", "model": "resnet%d" % (18 + r % 3), "seed": str(r)})
        rid = run.info.run_id
        client.log_batch(rid, params=[Param("lr", str(0.001 * (r + 1))), Param("batch_size", "256"),
                                      Param("optimizer", "adamw"), Param("epochs", str(steps // 100)),
                                      Param("dropout", "0.1")])
        batch = []
        for s in range(steps):
            for k in range(KEYS):
                v = rng.gauss(k, 1.0 + s / steps)
                batch.append(Metric("train/m%02d" % k, v, t0 + r * 3600_000 + s * 1000, s))
                points += 1
                total += v
                if len(batch) == 1000:
                    client.log_batch(rid, metrics=batch)
                    batch = []
        if batch:
            client.log_batch(rid, metrics=batch)
        client.set_terminated(rid, "FINISHED", end_time=t0 + r * 3600_000 + steps * 1000)
    print(json.dumps({"runs": runs, "points": points, "sum": total}))


if __name__ == "__main__":
    main()
