"""Write steps [START, STOP) into the W&B run RUN_ID under DIR/wandb with the real SDK, offline.

Usage: grow.py DIR RUN_ID START STOP [STATS_SECONDS]
(GROW_NO_ENTITY=1 in the environment: the run gets no entity.)

The first call creates the run; a later one resumes it (resume="allow"), as a
training job that is restarted does, so the run grows by a new segment folder.
Each call logs "loss" and "acc" at every step, one console line, and a config
key named after its START (so later segments add params). With STATS_SECONDS
the SDK's system metrics are sampled every 0.1 s for that long before the run
finishes (per-core CPU, memory, disk, process series), so that a resumed run
gains system-metric points too. Used by the tests of incremental sync
(issue 12).
"""
import os
import sys
import time

os.environ.update({
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "WANDB_CONSOLE": "wrap",
    "WANDB_HOST": "grow-host",
    "WANDB_USERNAME": "grow-user",
    "WANDB_PROJECT": "growing",
    "WANDB_ENTITY": "grow-entity",
})
if os.environ.get("GROW_NO_ENTITY"):
    # As offline runs often are: their origins name their folder, and
    # have a former origin (runferry before 11).
    del os.environ["WANDB_ENTITY"]

import wandb  # noqa: E402

out, run_id, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
stats = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
os.chdir(out)
settings = wandb.Settings(x_disable_stats=True)
if stats > 0:
    settings = wandb.Settings(x_stats_sampling_interval=0.1)
run = wandb.init(id=run_id, name="growing run", resume="allow", dir=".",
                 config={f"segment_from_{start}": start}, settings=settings)
for step in range(start, stop):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 1000.0}, step=step)
print(f"logged steps {start}..{stop - 1}", flush=True)
if stats > 0:
    time.sleep(stats)
run.finish()
