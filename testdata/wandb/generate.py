#!/usr/bin/env python3
"""Generate real W&B offline run folders with known content, plus expected.json.

Drives the real `wandb` SDK (from the project venv, offline, no network) to write
OUT/wandb/offline-run-*/ folders, then writes OUT/expected.json describing exactly what each
run logged. Everything is seeded, so expected.json is identical on every run; the folders
hold timestamps and so differ byte-wise.

Before writing expected.json the script reads every .wandb file back (a minimal reader of
the LevelDB-style framing plus wandb's own protobuf classes) and checks that each logged
history row, config, summary, tag and console line is really in the file, so expected.json
never claims something the SDK did not write (e.g. in the SIGKILLed run).

Usage: .venv/bin/python testdata/wandb/generate.py --out testdata/wandb/fixtures
(`make fixtures`). Run ids and contents are documented in docs/TESTING.md.
"""

import argparse
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ENTITY_PROJECT = "runferry-fixtures"

# Settings that keep the folders free of this machine's identity and stable across runs.
COMMON_ENV = {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "WANDB_CONSOLE": "wrap",
    "WANDB_HOST": "fixture-host",
    "WANDB_USERNAME": "fixture-user",
    "WANDB_PROJECT": ENTITY_PROJECT,
    "WANDB_ENTITY": "fixture-entity",
    "PYTHONHASHSEED": "0",
}


def enc(v):
    """Encode a value for expected.json: non-finite floats become strings."""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, dict):
        return {k: enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [enc(x) for x in v]
    return v


def flatten(d, prefix=""):
    """Nested metric dicts become slash-joined keys, as W&B does."""
    out = {}
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = v
    return out


# ---------------------------------------------------------------------------------------
# Run programs. Each runs in its own Python process (main() re-invokes this file with
# --child NAME) so that resumption and crashes are real process boundaries.
# ---------------------------------------------------------------------------------------

RUN_A_CONFIG = {
    "lr": 0.001,
    "epochs": 12,
    "use_amp": True,
    "dropout": None,
    "optimizer": {"name": "adamw", "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.01},
    "layers": [64, 128, {"kind": "attn", "heads": 4}],
    "model name": "résnet-τ",
    "数据集": "cifar10",
    "schedule": {"warmup": {"steps": 100, "enabled": False}, "decay": "cosine"},
}

# (step, row) pairs for run A, in logging order. Keys appear at irregular steps.
RUN_A_ROWS = [
    (0, {"loss": 2.5, "acc": 0.1, "lr": 0.001}),
    (1, {"loss": 2.25, "精度/val": 0.125}),
    (2, {"loss": 2.0, "acc": 0.25, "loss/é": 1.5}),
    (5, {"loss": float("nan"), "val": {"acc": 0.5, "loss": 1.75}}),
    (9, {"loss": 1.5, "grad_norm": float("inf"), "acc": 0.375}),
    (10, {"loss": 1.25, "grad_norm": float("-inf"), "精度/val": 0.625, "text": "ten"}),
    (11, {"loss": 1.0, "acc": 0.75, "big": 1e300, "tiny": -5e-324, "int_metric": 7, "flag": True}),
    (15, {"loss": 0.5, "val": {"acc": 0.875}, "loss/é": 0.25, "lr": 0.0001}),
]
RUN_A_STDOUT = ["epoch 0 starting", "ünïcode stdout line ✓", "done training"]
RUN_A_STDERR = ["warning: fake deprecation on stderr", "second stderr line"]


def child_a(run_id):
    import numpy as np
    import wandb

    rng = np.random.default_rng(1234)
    run = wandb.init(
        id=run_id, name="run-a-everything", config=RUN_A_CONFIG, tags=["baseline", "ünï-tag"],
        notes="Run A: nested config, irregular steps, NaN/Inf, unicode, media, console.",
        group="group-1", job_type="train", dir=".", settings=wandb.Settings(x_disable_stats=False),
    )
    print(RUN_A_STDOUT[0], flush=True)
    for step, row in RUN_A_ROWS[:4]:
        run.log(row, step=step)
    print(RUN_A_STDERR[0], file=sys.stderr, flush=True)
    image = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
    table = wandb.Table(columns=["id", "label", "score"], data=[[1, "cat", 0.5], [2, "dog", 0.75]])
    hist = wandb.Histogram(rng.normal(size=200).tolist(), num_bins=8)
    run.log({"samples/image": wandb.Image(image, caption="noise"), "preds": table, "weights": hist}, step=7)
    print(RUN_A_STDOUT[1], flush=True)
    for step, row in RUN_A_ROWS[4:]:
        run.log(row, step=step)
    run.summary["best"] = 0.875
    run.summary["best_epoch"] = 15
    run.summary["note"] = "summary-only string"
    run.summary.update({"final": {"acc": 0.875}})
    with open(os.path.join(run.dir, "custom.txt"), "w") as f:
        f.write("a file written into run.dir\n")
    os.makedirs(os.path.join(run.dir, "sub"), exist_ok=True)
    with open(os.path.join(run.dir, "sub", "model.json"), "w") as f:
        json.dump({"weights": [1, 2, 3]}, f)
    print(RUN_A_STDERR[1], file=sys.stderr, flush=True)
    print(RUN_A_STDOUT[2], flush=True)
    run.finish()


RUN_B_FIRST = [(0, {"loss": 1.0}), (1, {"loss": 0.9}), (2, {"loss": 0.8})]
RUN_B_SECOND = [(3, {"loss": 0.7}), (4, {"loss": 0.6, "extra": 1.0})]


def child_b(run_id, part):
    import wandb

    run = wandb.init(id=run_id, name="run-b-resumed", resume="allow" if part == "1" else "must",
                     config={"part_1_param": 1} if part == "1" else {"part_2_param": 2},
                     tags=["resumed"], dir=".")
    for step, row in (RUN_B_FIRST if part == "1" else RUN_B_SECOND):
        run.log(row, step=step)
    print(f"segment {part}", flush=True)
    run.finish()


RUN_C_ROWS = [(i, {"loss": 1.0 / (i + 1), "step_sq": float(i * i)}) for i in range(5)]


CRASH_PADDING_LINES = int(os.environ.get("CRASH_PADDING_LINES", "600"))


def child_c(run_id):
    import wandb

    run = wandb.init(id=run_id, name="run-c-crashed", config={"will_crash": True}, tags=["crash"], dir=".")
    for step, row in RUN_C_ROWS:
        run.log(row, step=step, commit=True)
    print("about to be killed", flush=True)
    # wandb-core buffers its writes to the .wandb file and a crash loses the buffer, so push
    # the rows above to disk with console padding (the padding's own tail is lost).
    for i in range(CRASH_PADDING_LINES):
        print(f"padding line {i:05d} " + "x" * 40)
    sys.stdout.flush()
    time.sleep(2)
    sys.__stdout__.write("READY\n")
    sys.stdout.flush()
    time.sleep(600)


RUN_D_ROWS = [
    (0, {"train/loss": 1.0}),
    (1, {"train/loss": 0.8, "epoch": 0, "val/acc": 0.5, "val/loss": 0.9}),
    (2, {"train/loss": 0.6}),
    (3, {"train/loss": 0.5, "epoch": 1, "val/acc": 0.7, "val/loss": 0.6}),
    (4, {"train/loss": 0.4, "epoch": 2, "val/acc": 0.8}),
]


def child_d(run_id):
    import wandb

    run = wandb.init(id=run_id, name="run-d-custom-x-axis", config={"epochs": 3}, dir=".")
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch")
    run.define_metric("train/loss", summary="min")
    for step, row in RUN_D_ROWS:
        run.log(row, step=step)
    run.finish()


RUN_E_ROWS = [(0, {"loss": 5.0}), (1, {"loss": float("nan")})]


def child_e(run_id):
    import wandb

    run = wandb.init(id=run_id, name="run-e-failed", config={"diverges": True}, job_type="eval", dir=".")
    for step, row in RUN_E_ROWS:
        run.log(row, step=step)
    print("loss is NaN, giving up", file=sys.stderr, flush=True)
    run.finish(exit_code=1)


def child_f(run_id):
    import wandb

    run = wandb.init(id=run_id, name="run-f-empty", dir=".")
    run.finish()


# ---------------------------------------------------------------------------------------
# Expected content
# ---------------------------------------------------------------------------------------

RUN_IDS = {"a": "fxa00001", "b": "fxb00002", "c": "fxc00003", "d": "fxd00004", "e": "fxe00005", "f": "fxf00006"}


def rows_json(rows):
    return [{"step": s, "values": enc(flatten(r))} for s, r in rows]


def expected():
    media_a = {"step": 7, "keys": {"samples/image": "image-file", "preds": "table-file", "weights": "histogram"}}
    return {
        "format": 1,
        "project": ENTITY_PROJECT,
        "notes": "NaN and infinities are encoded as the strings NaN, Infinity, -Infinity. "
                 "history lists only what the script logged (rows of _step, keyed values); "
                 "media lists non-scalar values by kind. summary lists values set explicitly.",
        "runs": {
            RUN_IDS["a"]: {
                "name": "run-a-everything", "status": "FINISHED", "exit_code": 0,
                "tags": ["baseline", "ünï-tag"],
                "notes": "Run A: nested config, irregular steps, NaN/Inf, unicode, media, console.",
                "group": "group-1", "job_type": "train",
                "config": enc(RUN_A_CONFIG),
                "history": rows_json(RUN_A_ROWS),
                "media": [media_a],
                "summary": {"best": 0.875, "best_epoch": 15, "note": "summary-only string", "final": {"acc": 0.875}},
                "console": {"stdout": RUN_A_STDOUT, "stderr": RUN_A_STDERR},
                "files": ["custom.txt", "sub/model.json"],
                "segments": 1,
            },
            RUN_IDS["b"]: {
                "name": "run-b-resumed", "status": "FINISHED", "exit_code": 0, "tags": ["resumed"],
                "config": {"part_1_param": 1, "part_2_param": 2},
                "history": rows_json(RUN_B_FIRST + RUN_B_SECOND),
                "console": {"stdout": ["segment 1", "segment 2"], "stderr": []},
                "segments": 2,
            },
            RUN_IDS["c"]: {
                # No exit record: silent longer than crashed-after (tests pin ?crashed-after=1ns),
                # the run crashed, as W&B shows it: FAILED with the W&B state in the tag wandb.state
                # (RUNNING with state running only while its log is fresh; docs/TESTING.md).
                "name": "run-c-crashed", "status": "FAILED", "state": "crashed", "exit_code": None,
                "has_exit_record": False,
                "tags": ["crash"], "config": {"will_crash": True},
                "history": rows_json(RUN_C_ROWS),
                "console": {"stdout": ["about to be killed"], "stderr": []},
                "console_is_prefix": True,
                "segments": 1,
            },
            RUN_IDS["d"]: {
                "name": "run-d-custom-x-axis", "status": "FINISHED", "exit_code": 0,
                "config": {"epochs": 3},
                "history": rows_json(RUN_D_ROWS),
                "define_metric": [
                    {"name": "epoch"},
                    {"glob_name": "val/*", "step_metric": "epoch"},
                    {"name": "train/loss", "summary": "min"},
                ],
                "segments": 1,
            },
            RUN_IDS["e"]: {
                "name": "run-e-failed", "status": "FAILED", "exit_code": 1, "job_type": "eval",
                "config": {"diverges": True},
                "history": rows_json(RUN_E_ROWS),
                "console": {"stdout": [], "stderr": ["loss is NaN, giving up"]},
                "segments": 1,
            },
            RUN_IDS["f"]: {
                "name": "run-f-empty", "status": "FINISHED", "exit_code": 0,
                "config": {}, "history": [], "segments": 1,
            },
        },
    }


# ---------------------------------------------------------------------------------------
# Read-back check: a minimal .wandb reader (LevelDB log framing, wandb protobufs)
# ---------------------------------------------------------------------------------------

BLOCK = 32768
HEADER_LEN = 7  # ":W&B" magic, uint16 0xBEE1, uint8 version


def read_records(path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = open(path, "rb").read()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: bad magic {data[:4]!r}")
    pos, pending = HEADER_LEN, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:
            pos += left
            continue
        _crc, length, typ = struct.unpack("<IHB", data[pos:pos + 7])
        if typ == 0 and length == 0:
            pos += left  # zero padding to the end of the block
            continue
        chunk = data[pos + 7:pos + 7 + length]
        if len(chunk) < length:
            break  # torn tail (crash)
        pos += 7 + length
        if typ == 1:
            pending = chunk
        elif typ == 2:
            pending = chunk
            continue
        elif typ == 3:
            pending += chunk
            continue
        elif typ == 4:
            pending += chunk
        rec = pb.Record()
        rec.ParseFromString(pending)
        pending = b""
        yield rec


def item_value(item):
    which = item.WhichOneof("value") if "value" in [o.name for o in item.DESCRIPTOR.oneofs] else None
    if which and which != "value_json":
        return getattr(item, which) if which != "none" else None
    return json.loads(item.value_json) if item.value_json else None


def item_key(item):
    return "/".join(item.nested_key) if item.nested_key else item.key


def scan_run(folders):
    """Summarise a run's folders (one per resumed segment, oldest first) as the SDK wrote them."""
    got = {"history": [], "config": {}, "summary": {}, "stdout": [], "stderr": [], "exit": None,
           "runs": [], "metrics": [], "files": set()}
    wandb_files = [os.path.join(d, f) for d in folders for f in sorted(os.listdir(d)) if f.endswith(".wandb")]
    for wf in wandb_files:
        for rec in read_records(wf):
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                row = {item_key(i): item_value(i) for i in rec.history.item}
                got["history"].append(row)
            elif kind == "config":
                for i in rec.config.update:
                    got["config"][item_key(i)] = json.loads(i.value_json)
            elif kind == "summary":
                for i in rec.summary.update:
                    got["summary"][item_key(i)] = json.loads(i.value_json)
            elif kind == "output_raw":
                stream = "stdout" if rec.output_raw.output_type == 1 else "stderr"
                got[stream].append(rec.output_raw.line)
            elif kind == "exit":
                got["exit"] = rec.exit.exit_code
            elif kind == "run":
                got["runs"].append(rec.run)
                for i in rec.run.config.update:
                    got["config"][item_key(i)] = json.loads(i.value_json)
            elif kind == "metric":
                got["metrics"].append(rec.metric)
            elif kind == "files":
                got["files"].update(f.path for f in rec.files.files)
    return got


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                              and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def dec(v):
    """Inverse of enc for comparisons."""
    if v in ("NaN", "Infinity", "-Infinity"):
        return float(v.replace("Infinity", "inf"))
    if isinstance(v, dict):
        return {k: dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [dec(x) for x in v]
    return v


def verify(folders, exp):
    """Raise if the run's folders do not hold what exp says."""
    got = scan_run(folders)
    problems = []
    rows = {}
    for row in got["history"]:
        rows[row.get("_step")] = row
    for want in exp["history"]:
        row = rows.get(want["step"])
        if row is None:
            problems.append(f"no history row for step {want['step']}")
            continue
        for k, v in want["values"].items():
            # The SDK writes history values as JSON, where NaN/Infinity are JSON extensions.
            if not same(row.get(k), dec(v)):
                problems.append(f"step {want['step']} {k}: file has {row.get(k)!r}, expected {v!r}")
    logged_steps = {w["step"] for w in exp["history"]} | {m["step"] for m in exp.get("media", [])}
    extra = sorted(s for s in rows if s not in logged_steps)
    if extra:
        problems.append(f"unexpected history steps {extra}")
    for k, v in exp.get("config", {}).items():
        if not same(got["config"].get(k), dec(v)):
            problems.append(f"config {k}: file has {got['config'].get(k)!r}, expected {v!r}")
    for k, v in exp.get("summary", {}).items():
        if not same(got["summary"].get(k), dec(v)):
            problems.append(f"summary {k}: file has {got['summary'].get(k)!r}, expected {v!r}")
    for stream in ("stdout", "stderr"):
        want = exp.get("console", {}).get(stream)
        if want is not None:
            lines = [ln.rstrip("\n") for ln in "".join(got[stream]).splitlines()]
            if exp.get("console_is_prefix"):
                lines = lines[:len(want)]
            if lines != want:
                problems.append(f"{stream}: file has {lines!r}, expected {want!r}")
    want_exit = exp["exit_code"]
    if got["exit"] != want_exit:
        problems.append(f"exit code: file has {got['exit']!r}, expected {want_exit!r}")
    if got["runs"]:
        r = got["runs"][0]
        for field, attr in (("name", "display_name"), ("notes", "notes"), ("group", "run_group"), ("job_type", "job_type")):
            if field in exp and getattr(r, attr) != exp[field]:
                problems.append(f"{field}: file has {getattr(r, attr)!r}, expected {exp[field]!r}")
        if "tags" in exp and list(r.tags) != exp["tags"]:
            problems.append(f"tags: file has {list(r.tags)!r}, expected {exp['tags']!r}")
    else:
        problems.append("no run record")
    if "define_metric" in exp:
        defs = [{k: v for k, v in (("name", m.name), ("glob_name", m.glob_name), ("step_metric", m.step_metric)) if v}
                for m in got["metrics"]]
        want_defs = [{k: v for k, v in d.items() if k != "summary"} for d in exp["define_metric"]]
        if defs != want_defs:
            problems.append(f"define_metric: file has {defs!r}, expected {want_defs!r}")
    if len(folders) != exp["segments"]:
        problems.append(f"{len(folders)} folders, expected {exp['segments']} segments")
    for f in exp.get("files", []):
        if not any(os.path.exists(os.path.join(d, "files", f)) for d in folders):
            problems.append(f"file {f} missing from files/")
    if problems:
        raise SystemExit(f"{folders}: the SDK did not write what expected.json says:\n  " + "\n  ".join(problems))


# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------


def run_child(workdir, name, *args, kill_after_ready=False):
    env = dict(os.environ, **COMMON_ENV)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, *args]
    if not kill_after_ready:
        subprocess.run(cmd, cwd=workdir, env=env, check=name != "e", stdin=subprocess.DEVNULL, timeout=300)
        return
    # Crash: the whole process group (the Python process and wandb-core) dies by SIGKILL,
    # as on an OOM kill or a preempted node; no exit record is written.
    p = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         start_new_session=True, text=True)
    try:
        for line in p.stdout:
            if line.strip() == "READY":
                break
        time.sleep(3)  # let wandb-core write what it received to the .wandb file
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


def tidy(wandb_dir):
    """Drop what points outside the folder (absolute symlinks) or is machine-local noise."""
    for root, dirs, files in os.walk(wandb_dir):
        for f in files + dirs:
            p = os.path.join(root, f)
            if os.path.islink(p) and os.path.isabs(os.readlink(p)):
                os.unlink(p)
    for name in os.listdir(wandb_dir):
        tmp = os.path.join(wandb_dir, name, "tmp")
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        fn = {"a": child_a, "b": child_b, "c": child_c, "d": child_d, "e": child_e, "f": child_f}[args.child]
        fn(RUN_IDS[args.child], *args.rest)
        return

    out = os.path.abspath(args.out)
    wandb_dir = os.path.join(out, "wandb")
    if os.path.exists(wandb_dir):
        shutil.rmtree(wandb_dir)
    os.makedirs(out, exist_ok=True)

    run_child(out, "a")
    run_child(out, "b", "1")
    time.sleep(1.1)  # folder names have one-second resolution; keep segments apart
    run_child(out, "b", "2")
    run_child(out, "c", kill_after_ready=True)
    run_child(out, "d")
    run_child(out, "e")
    run_child(out, "f")
    tidy(wandb_dir)

    exp = expected()
    for run_id, want in exp["runs"].items():
        folders = sorted(os.path.join(wandb_dir, d) for d in os.listdir(wandb_dir)
                         if d.endswith("-" + run_id) and not os.path.islink(os.path.join(wandb_dir, d)))
        verify(folders, want)

    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(exp, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print(f"wrote {wandb_dir} and expected.json")


if __name__ == "__main__":
    main()
