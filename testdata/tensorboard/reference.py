"""Reads a tree of TensorBoard log folders with the tensorboard package's
EventAccumulator (size guidance keeping everything) and prints what it
holds as JSON, the independent reference runferry's tests compare with.

    python reference.py ROOT

Output: {folder (relative, "." for ROOT): {"scalars": {tag: [[wall, step, value]]},
"tensors": {tag: {"plugin": name, "events": [[wall, step, value]]}},
"histograms": {tag: [[wall, step, {fields}]]}, "images": {tag: [[wall, step, w, h, sha256]]},
"hparams": {tag: {json of the plugin data}}}}. Tensor values: a number
for scalars, a list of strings for string tensors (images: sha256 of the
images after width and height), nested lists otherwise. Non-finite numbers
are the strings "NaN", "Infinity", "-Infinity".
"""
import hashlib
import json
import math
import os
import sys

from google.protobuf import json_format
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

KEEP_ALL = {ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 0, ea.HISTOGRAMS: 0, ea.COMPRESSED_HISTOGRAMS: 0, ea.AUDIO: 0}


def num(x):
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def tensor_value(t, plugin):
    a = tensor_util.make_ndarray(t)
    if a.dtype.kind in "OSU":
        items = [s if isinstance(s, bytes) else str(s).encode() for s in a.reshape(-1)]
        if plugin == "images":
            return [items[0].decode(), items[1].decode()] + [hashlib.sha256(s).hexdigest() for s in items[2:]]
        return [s.decode() for s in items]
    if a.ndim == 0:
        if a.dtype.kind in "iu":
            return int(a)
        return num(a)
    return json.loads(json.dumps(a.tolist()), parse_constant=lambda c: c)


def folder(path):
    acc = ea.EventAccumulator(path, size_guidance=KEEP_ALL)
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "tensors": {}, "histograms": {}, "images": {}, "hparams": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.wall_time, e.step, num(e.value)] for e in acc.Scalars(tag)]
    for tag in tags["tensors"]:
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        out["tensors"][tag] = {"plugin": plugin, "events": [[e.wall_time, e.step, tensor_value(e.tensor_proto, plugin)] for e in acc.Tensors(tag)]}
    for tag in tags["histograms"]:
        out["histograms"][tag] = [[e.wall_time, e.step, {
            "min": num(h.min), "max": num(h.max), "num": num(h.num), "sum": num(h.sum), "sum_squares": num(h.sum_squares),
            "bucket_limit": [num(x) for x in h.bucket_limit], "bucket": [num(x) for x in h.bucket]}]
            for e in acc.Histograms(tag) for h in [e.histogram_value]]
    for tag in tags["images"]:
        out["images"][tag] = [[e.wall_time, e.step, e.width, e.height, hashlib.sha256(e.encoded_image_string).hexdigest()] for e in acc.Images(tag)]
    try:
        hparams = acc.PluginTagToContent("hparams")
    except KeyError:  # no summary of the plugin
        hparams = {}
    for tag, content in hparams.items():
        out["hparams"][tag] = json_format.MessageToDict(plugin_data_pb2.HParamsPluginData.FromString(content))
    return out


def main():
    root = sys.argv[1]
    res = {}
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        if any("tfevents" in f for f in files):
            res[os.path.relpath(dirpath, root).replace(os.sep, "/")] = folder(dirpath)
    json.dump(res, sys.stdout, indent=1, sort_keys=True, allow_nan=False)


if __name__ == "__main__":
    main()
