"""Keep a W&B run live with the real SDK, offline, until told to stop.

Usage: live.py DIR RUN_ID

Creates the run under DIR/wandb, logs "loss" at steps 0..4 and console
lines, then prints "live" on stdout and waits, the run still open (no exit
record), until its stdin is closed; then it finishes the run. Used by the
tests judging a run without an exit record live or crashed (a live run is
RUNNING, whatever a copied crashed run's folder times say).
"""
import os
import sys

os.environ.update({
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "WANDB_CONSOLE": "wrap",
    "WANDB_HOST": "live-host",
    "WANDB_USERNAME": "live-user",
    "WANDB_PROJECT": "live",
    "WANDB_ENTITY": "live-entity",
})

import wandb  # noqa: E402

out, run_id = sys.argv[1], sys.argv[2]
os.chdir(out)
run = wandb.init(id=run_id, name="live run", dir=".", settings=wandb.Settings(x_disable_stats=True))
for step in range(5):
    run.log({"loss": 1.0 / (step + 1)}, step=step)
run.log({}, commit=True)  # step 4's row is written once committed
print("logged steps 0..4", flush=True)
# wandb-core buffers its writes to the .wandb file: push the rows above to
# disk with console padding, as generate.py does for run-c-crashed.
for i in range(600):
    print(f"padding line {i:05d} " + "x" * 40)
sys.stdout.flush()
sys.__stdout__.write("live\n")
sys.__stdout__.flush()
sys.stdin.read()
run.finish()
