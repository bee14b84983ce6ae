"""Writes one W&B run with the real wandb SDK, offline, for scripts/screenshots.sh.

The W&B fixtures' images are 8 by 8 pixels: MLflow's image grid shows an image
at its own size, so they are too small to see in a screenshot. This run logs
128-by-128 images of four solid quadrants (SCREENSHOT_COLOURS, turned a quarter
each step) at steps 0 to 4, and a loss curve, so that the image grid shows
what a migrated W&B image looks like; TestScreenshots looks for the colours.

Usage: screenshot_run.py DIR   (the run folder is written under DIR/wandb)
"""

import os
import sys

import numpy as np
import wandb

# Red, green, blue, yellow: colours MLflow's UI does not use.
SCREENSHOT_COLOURS = [(220, 40, 40), (40, 180, 60), (40, 70, 220), (240, 200, 30)]


def quadrants(turn):
    img = np.zeros((128, 128, 3), dtype=np.uint8)
    cells = [(0, 0), (0, 64), (64, 64), (64, 0)]
    for i, (y, x) in enumerate(cells):
        img[y:y + 64, x:x + 64] = SCREENSHOT_COLOURS[(i + turn) % 4]
    return img


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    run = wandb.init(dir=out, project="runferry-screenshots", entity="fixture-entity",
                     name="image-grid", id="shots0001", notes="128x128 images for the screenshots",
                     config={"lr": 0.001, "epochs": 5})
    for step in range(5):
        run.log({"samples/image": wandb.Image(quadrants(step), caption=f"step {step}"),
                 "train/loss": 1.0 / (step + 1)}, step=step)
    run.finish()


if __name__ == "__main__":
    main()
