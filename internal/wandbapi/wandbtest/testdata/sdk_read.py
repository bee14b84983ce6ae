"""Reads everything of one entity through the real wandb SDK's public API
and prints it as JSON: {project: {run_id: {...}}}. Used by wandbtest's
tests to check the test server against the real client."""
import base64
import datetime
import hashlib
import json
import math
import os
import sys
import tempfile

import wandb


def enc(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {k: enc(x) for k, x in v.items()}
    if isinstance(v, list):
        return [enc(x) for x in v]
    return v


def files(run):
    """Every run file as run.files() lists it (pages of 2), downloaded by the
    SDK: {name: {"size", "md5" (the listing's), "got_md5" (of the bytes
    downloaded), "got_size"}}."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for f in run.files(per_page=2):
            f.download(root=d, replace=True)
            b = open(os.path.join(d, f.name), "rb").read()
            out[f.name] = {"size": f.size, "md5": f.md5, "got_size": len(b),
                           "got_md5": base64.b64encode(hashlib.md5(b).digest()).decode()}
    return out


def md5b64(b):
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def artifacts(arts):
    """Every artifact version of arts (run.logged_artifacts() or
    run.used_artifacts()): its fields, its manifest's entries (downloaded
    by the SDK from the manifest's signed URL), and every file artifact.download()
    fetched: {path: base64 MD5 of the bytes}."""
    out = []
    for a in arts:
        entries = {p: {"digest": e.digest, "size": e.size, "ref": e.ref}
                   for p, e in a.manifest.entries.items()}
        got = {}
        with tempfile.TemporaryDirectory() as d:
            a.download(root=d)
            for root, _, names in os.walk(d):
                for n in names:
                    fp = os.path.join(root, n)
                    got[os.path.relpath(fp, d)] = md5b64(open(fp, "rb").read())
        out.append({"name": a.name, "type": a.type, "version": a.version, "digest": a.digest,
                    "aliases": sorted(a.aliases), "description": a.description,
                    "metadata": a.metadata, "entries": entries, "downloaded": got})
    return out


def console(lines):
    """Console lines as run.console_logs() gives them: [number, timestamp
    (UTC, to the microsecond, or None), level, label, content]."""
    def ts(t):
        return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") if t else None
    return [[l.number, ts(l.timestamp), l.level, l.label, l.content] for l in lines]


entity = sys.argv[1]
with_artifacts = "--artifacts" in sys.argv[2:]
api = wandb.Api(timeout=30)
out = {}
for p in api.projects(entity):
    runs = {}
    for r in api.runs(f"{entity}/{p.name}", per_page=2):
        runs[r.id] = {
            "name": r.name,
            "state": r.state,
            "config": dict(r.config),
            "summary": dict(r.summary._json_dict),
            "tags": list(r.tags),
            "notes": r.notes,
            "group": r.group,
            "job_type": r.job_type,
            "last_step": r.lastHistoryStep,
            "history": [row for row in r.scan_history(page_size=3)],
            "sampled": len(r.history(samples=3, pandas=False)),
            "files": files(r),
            "system": r.history(stream="system", pandas=False, samples=100000),
            "console": console(r.console_logs(per_page=2)),
            "console_tail": console(r.console_logs(last=2)),
        }
        if with_artifacts:
            runs[r.id]["logged"] = artifacts(r.logged_artifacts())
            runs[r.id]["used"] = artifacts(r.used_artifacts())
    out[p.name] = runs
json.dump(enc(out), sys.stdout, sort_keys=True, allow_nan=False)
