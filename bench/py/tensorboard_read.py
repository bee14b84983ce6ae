"""The Python side of the TensorBoard reading benchmark (bench/run.sh).

Reads every run folder under LOGDIR with the tensorboard package's
EventAccumulator, size guidance set to keep everything (the default keeps a
sample of 10,000 scalars per tag), and prints {"points", "sum", "runs",
"seconds"} as one JSON line: points are scalars (simple_value) plus tensor
summaries of the scalars plugin, the points sources/tensorboard makes.

Usage: python tensorboard_read.py LOGDIR
"""
import json
import os
import sys
import time

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.util import tensor_util

KEEP_ALL = {ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 0, ea.HISTOGRAMS: 0, ea.COMPRESSED_HISTOGRAMS: 0, ea.AUDIO: 0}


def main():
    start = time.time()
    points, total, runs = 0, 0.0, 0
    for dirpath, dirs, files in sorted(os.walk(sys.argv[1])):
        if not any("tfevents" in f for f in files):
            continue
        runs += 1
        acc = ea.EventAccumulator(dirpath, size_guidance=KEEP_ALL)
        acc.Reload()
        tags = acc.Tags()
        for tag in tags["scalars"]:
            for e in acc.Scalars(tag):
                points += 1
                total += e.value
        for tag in tags["tensors"]:
            if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
                continue
            for e in acc.Tensors(tag):
                points += 1
                total += float(tensor_util.make_ndarray(e.tensor_proto))
    print(json.dumps({"points": points, "sum": total, "runs": runs, "seconds": time.time() - start}))


if __name__ == "__main__":
    main()
