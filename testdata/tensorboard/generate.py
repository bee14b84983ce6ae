"""Writes TensorBoard log folders with real writers, for runferry's tests.

    python generate.py OUT

tensorboardX's SummaryWriter writes TF1-style summaries (simple_value,
histograms, images, text, hparams); TF2-style tensor summaries (what
tf.summary and Keras write) are written with the tensorboard package's own
EventFileWriter and protobufs, since its summary ops need TensorFlow. Layout:

    OUT/tbx/                 tensorboardX: scalars, text, histogram, image
    OUT/tbx/hparams/         tensorboardX add_hparams: params, session end, metrics
    OUT/tf2/                 tensor scalars (float, double, int32, int64, half),
                             text, hparams start/end, TF2 histogram and images
    OUT/keras/train/, OUT/keras/validation/   Keras-style epoch scalars
    OUT/restarted/           two files of one run, the later one named first
    OUT/damaged/truncated/   a file cut inside its last record
    OUT/damaged/crc/         a file whose third scalar record's data is corrupted
"""
import io
import json
import os
import struct
import sys

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util
from tensorboardX import SummaryWriter

BASE = 1_750_000_000.0


def png(w, h, seed):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def tbx(out):
    w = SummaryWriter(os.path.join(out, "tbx"))
    for step in range(50):
        w.add_scalar("loss", 1.0 / (step + 1), step, walltime=BASE + step * 0.25)
        if step % 5 == 0:
            w.add_scalar("eval/acc", 0.5 + step / 100, step, walltime=BASE + step * 0.25 + 0.1)
    w.add_scalar("weird", float("nan"), 50, walltime=BASE + 13)
    w.add_scalar("weird", float("inf"), 51, walltime=BASE + 13.5)
    w.add_text("notes", "first line\nsecond line", 0, walltime=BASE + 1)
    w.add_text("args", json.dumps({"lr": 0.001, "optim": {"name": "adam", "betas": [0.9, 0.999]}, "seed": 7}), 0, walltime=BASE + 1)
    w.add_histogram("weights", np.linspace(-1, 1, 100), 3, walltime=BASE + 2)
    w.add_image("sample", np.asarray(Image.open(io.BytesIO(png(8, 6, 1)))), 4, walltime=BASE + 3, dataformats="HWC")
    w.add_hparams({"lr": 0.01, "batch": 32, "opt": "sgd", "aug": True}, {"hp/final_loss": 0.25}, name="hparams", global_step=49)
    w.close()


def tensor_value(tag, value, dtype, plugin=None, content=b""):
    v = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(value, dtype=dtype))
    if plugin:
        v.metadata.plugin_data.plugin_name = plugin
        v.metadata.plugin_data.content = content
    return v


def write(folder, events, suffix=""):
    os.makedirs(folder, exist_ok=True)
    w = EventFileWriter(folder, filename_suffix=suffix)
    for e in events:
        w.add_event(e)
    w.close()
    return [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(suffix) and "tfevents" in f]


def event(step, wall, *values):
    return event_pb2.Event(step=step, wall_time=wall, summary=summary_pb2.Summary(value=list(values)))


def tf2(out):
    evs = []
    pb = hp.hparams_pb({"units": 64, "dropout": 0.2, "act": "relu"}, trial_id="trial-7", start_time_secs=BASE - 5)
    evs.append(event_pb2.Event(step=0, wall_time=BASE - 4, summary=pb))
    kinds = [("f32", np.float32), ("f64", np.float64), ("i32", np.int32), ("i64", np.int64), ("f16", np.float16)]
    for step in range(20):
        vals = []
        for name, dt in kinds:
            v = (step * 1.5 - 7) if dt not in (np.int32, np.int64) else step * 3 - 20
            vals.append(tensor_value(name, np.array(v, dtype=dt), None, "scalars" if step == 0 else None))
        evs.append(event(step, BASE + step, *vals))
    evs.append(event(3, BASE + 30, tensor_value("big_i64", np.array(2**53 + 2, dtype=np.int64), None, "scalars")))
    evs.append(event(1, BASE + 31, tensor_value("log", np.array("epoch 1 done"), None, "text")))
    evs.append(event(2, BASE + 32, tensor_value("log", np.array(["a", "b"]), None)))
    edges = np.array([[0, 1, 3], [1, 2, 5], [2, 3, 1]], dtype=np.float64)
    evs.append(event(5, BASE + 33, tensor_value("dist", edges, None, "histograms")))
    imgs = np.array([b"8", b"6", png(8, 6, 2), png(8, 6, 3)], dtype=object)
    evs.append(event(6, BASE + 34, tensor_value("pics", imgs, None, "images")))
    evs.append(event(7, BASE + 35, tensor_value("pr", np.zeros((6, 3), dtype=np.float32), None, "pr_curves")))
    end = plugin_data_pb2.HParamsPluginData(version=0, session_end_info=plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_FAILURE, end_time_secs=BASE + 40))
    v = summary_pb2.Summary.Value(tag="_hparams_/session_end_info")
    v.metadata.plugin_data.plugin_name = "hparams"
    v.metadata.plugin_data.content = end.SerializeToString()
    v.tensor.CopyFrom(tensor_util.make_tensor_proto(np.array(0, dtype=np.float32)))
    evs.append(event(0, BASE + 40, v))
    write(os.path.join(out, "tf2"), evs)


def keras(out):
    for sub, off in (("train", 0.0), ("validation", 0.5)):
        evs = []
        for epoch in range(5):
            evs.append(event(epoch, BASE + epoch + off,
                             tensor_value("epoch_loss", np.array(1 / (epoch + 1) + off, dtype=np.float32), None, "scalars" if epoch == 0 else None),
                             tensor_value("epoch_accuracy", np.array(0.6 + epoch / 20 - off / 10, dtype=np.float32), None, "scalars" if epoch == 0 else None)))
        write(os.path.join(out, "keras", sub), evs)


def restarted(out):
    d = os.path.join(out, "restarted")
    first = write(d, [event(s, BASE + s, summary_pb2.Summary.Value(tag="loss", simple_value=10 - s)) for s in range(5)], ".a")
    os.rename(first[0], os.path.join(d, "events.out.tfevents.2000000000.host.z"))
    second = write(d, [event(s, BASE + 100 + s, summary_pb2.Summary.Value(tag="loss", simple_value=5 - s / 2)) for s in range(5, 10)], ".b")
    os.rename(second[0], os.path.join(d, "events.out.tfevents.1000000000.host.a"))


def records(path):
    """Offsets and lengths of a file's records."""
    data = open(path, "rb").read()
    out, off = [], 0
    while off < len(data):
        (n,) = struct.unpack("<Q", data[off:off + 8])
        out.append((off, n))
        off += 12 + n + 4
    return data, out


def damaged(out):
    for name in ("truncated", "crc"):
        d = os.path.join(out, "damaged", name)
        w = SummaryWriter(d)
        for step in range(10):
            w.add_scalar("loss", float(step), step, walltime=BASE + step)
        w.close()
        path = [os.path.join(d, f) for f in os.listdir(d)][0]
        data, recs = records(path)
        if name == "truncated":
            off, n = recs[-1]
            data = data[:off + 12 + n // 2]
        else:
            off, n = recs[3]  # record 0 is the file version: this is step 2
            b = bytearray(data)
            b[off + 12 + n - 1] ^= 0xFF
            data = bytes(b)
        with open(path, "wb") as f:
            f.write(data)


def main():
    out = sys.argv[1]
    tbx(out)
    tf2(out)
    keras(out)
    restarted(out)
    damaged(out)


if __name__ == "__main__":
    main()
