#!/usr/bin/env python3
"""Write one W&B offline run with the real wandb SDK, for view_test.go.

Usage: python wandb_view.py OUT_DIR  (writes OUT_DIR/wandb/offline-run-*-view0001/)

The run has what a W&B user sees differently from a plain MLflow run:
define_metric with an integer step metric (train/* against train/global_step),
a step metric that is not an integer (val/* against a fractional epoch), and
summary values that history does not end with (summary-only numbers, a string,
a boolean, a nested value, and a best value of a logged metric).
"""

import os
import sys

os.environ.update({
    "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true", "WANDB_CONSOLE": "off", "WANDB_PROJECT": "view-project",
    "WANDB_ENTITY": "view-entity",
})

import wandb  # noqa: E402

out = sys.argv[1]
run = wandb.init(id="view0001", name="view-run", dir=out, config={"lr": 0.1},
                 settings=wandb.Settings(x_disable_stats=True))
run.define_metric("train/global_step")
run.define_metric("train/*", step_metric="train/global_step")
run.define_metric("val/*", step_metric="epoch")
rows = [
    {"train/global_step": 30, "train/loss": 1.0, "loss": 0.9, "eval/acc": 0.5},
    {"train/global_step": 60, "train/loss": 0.5, "loss": 0.5, "epoch": 0.5, "val/acc": 0.25},
    {"train/global_step": 90, "train/loss": 0.25, "loss": 0.7, "eval/acc": 0.8},
    {"train/global_step": 120, "train/loss": 0.125, "epoch": 1.5, "val/acc": 0.75},
]
for step, row in enumerate(rows):
    run.log(row, step=step)
run.summary["loss"] = 0.5
run.summary["train_runtime"] = 12.5
run.summary["train/best_loss"] = 0.0625
run.summary["total_flos"] = 1e15
run.summary["best_epoch"] = 2
run.summary["best_model"] = "ckpt-2"
run.summary["converged"] = True
run.summary.update({"final": {"acc": 0.875}})
run.finish()
