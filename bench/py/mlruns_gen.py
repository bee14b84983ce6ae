"""Writes an MLflow file store (mlruns/) for the mlflowfile benchmark, in the
layout and formats MLflow's FileStore writes (experiment and run meta.yaml,
params/, tags/, metrics/<key> lines "<timestamp> <value> <step>").

Usage: python mlruns_gen.py OUT RUNS STEPS KEYS
Prints {"runs", "points", "sum"} as one JSON line.
"""
import json
import os
import sys

out, runs, steps, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
exp = "123456789012345678"
edir = os.path.join(out, exp)
os.makedirs(os.path.join(out, ".trash"), exist_ok=True)
os.makedirs(edir, exist_ok=True)
t0 = 1_700_000_000_000
with open(os.path.join(edir, "meta.yaml"), "w") as f:
    f.write(f"artifact_location: file://{os.path.abspath(edir)}\ncreation_time: {t0}\nexperiment_id: '{exp}'\n"
            f"last_update_time: {t0}\nlifecycle_stage: active\nname: bench\n")
total, s = 0, 0.0
for r in range(runs):
    rid = "%032x" % (0xBE7C0000 + r)
    rdir = os.path.join(edir, rid)
    for sub in ("metrics", "params", "tags", "artifacts"):
        os.makedirs(os.path.join(rdir, sub), exist_ok=True)
    with open(os.path.join(rdir, "meta.yaml"), "w") as f:
        f.write(f"artifact_uri: file://{os.path.abspath(rdir)}/artifacts\nend_time: {t0 + r * 1000 + 999}\n"
                f"entry_point_name: ''\nexperiment_id: '{exp}'\nlifecycle_stage: active\nrun_id: {rid}\n"
                f"run_name: run-{r}\nrun_uuid: {rid}\nsource_name: ''\nsource_type: 4\nsource_version: ''\n"
                f"start_time: {t0 + r * 1000}\nstatus: 3\ntags: []\nuser_id: bench\n")
    for p in range(10):
        with open(os.path.join(rdir, "params", f"p{p}"), "w") as f:
            f.write(str(p * r))
    for name, v in (("mlflow.runName", f"run-{r}"), ("mlflow.user", "bench"), ("team", "perf")):
        with open(os.path.join(rdir, "tags", name), "w") as f:
            f.write(v)
    for k in range(keys):
        lines = []
        for st in range(steps):
            v = (st * 7 + k * 13 + r) % 1000 / 1000.0
            s += v
            lines.append(f"{t0 + st} {v} {st}\n")
        total += steps
        with open(os.path.join(rdir, "metrics", f"key_{k:02d}"), "w") as f:
            f.writelines(lines)
print(json.dumps({"runs": runs, "points": total, "sum": s}))
