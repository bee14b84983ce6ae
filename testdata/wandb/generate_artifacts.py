#!/usr/bin/env python3
"""Make a W&B offline run that logs artifacts, with the real wandb SDK, plus expected.json.

Usage: python generate_artifacts.py OUT

Writes OUT/wandb/offline-run-*-artprod1/ (project "runferry-artifacts"), the SDK's staging
folder OUT/data (WANDB_DATA_DIR) and artifact cache OUT/cache (WANDB_CACHE_DIR), and
OUT/expected.json describing what was logged, computed from the files themselves (base64
MD5 of each file, sizes), never read back from the run.

The run logs, in this order:
  my-model:    model.pt, aliases best and prod, a description and metadata
  my-data:     a folder (add_dir) holding a.txt and sub/b.bin
  my-model:    a second version (other content), alias candidate
  refs:        one reference entry (file://), which has no content to carry
  lost-data:   lost.txt, whose staged copy this script deletes after the run
  cached-data: c.txt, whose staged copy this script deletes after the run, after putting its
               content in the SDK's artifact cache through the SDK's own cache class

The SDK refuses run.use_artifact in offline mode ("Cannot use artifact when in offline
mode."); the script checks that it still does and records it in expected.json, so that no
offline fixture can hold a use_artifact record.
"""

import base64
import hashlib
import json
import os
import shutil
import sys


def b64md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def main():
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    os.environ.update({
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
        "WANDB_DATA_DIR": os.path.join(out, "data"),
        "WANDB_CACHE_DIR": os.path.join(out, "cache"),
        "WANDB_CONFIG_DIR": os.path.join(out, "config"),
    })
    src = os.path.join(out, "src")
    files = {
        "model.pt": b"weights-v0" * 50,
        "model2/model.pt": b"weights-v1" * 70,
        "data/a.txt": b"hello a\n",
        "data/sub/b.bin": bytes(range(256)),
        "ref.txt": b"referenced\n",
        "lost.txt": b"this content will be gone\n",
        "c.txt": b"cached content\n",
    }
    for rel, data in files.items():
        p = os.path.join(src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)

    import wandb
    from wandb.sdk.artifacts.artifact_file_cache import get_artifact_file_cache

    expected = []

    def logged(art, aliases, contents, refs=(), missing=()):
        entries = [{"path": path, "size": len(data), "digest": b64md5(data)} for path, data in contents.items()]
        entries += [{"path": path, "size": len(data), "digest": b64md5(data), "ref": ref} for path, data, ref in refs]
        for e in entries:  # the SDK must agree with our own hashes
            m = art.manifest.entries[e["path"]]
            assert (m.digest, m.size) == (e["digest"], e["size"]), (e, m)
        expected.append({
            "name": art.name.split(":")[0], "type": art.type, "digest": art.manifest.digest(),
            "aliases": sorted(set(aliases) | {"latest"}), "description": art.description or "",
            "metadata": art.metadata or None, "entries": sorted(entries, key=lambda e: e["path"]),
            "missing": sorted(missing),
        })

    run = wandb.init(project="runferry-artifacts", id="artprod1", dir=out)
    model = wandb.Artifact("my-model", type="model", description="the best model",
                           metadata={"epochs": 3, "lr": 0.1})
    model.add_file(os.path.join(src, "model.pt"))
    run.log_artifact(model, aliases=["best", "prod"])
    logged(model, ["best", "prod"], {"model.pt": files["model.pt"]})

    data = wandb.Artifact("my-data", type="dataset")
    data.add_dir(os.path.join(src, "data"))
    run.log_artifact(data)
    logged(data, [], {"a.txt": files["data/a.txt"], "sub/b.bin": files["data/sub/b.bin"]})

    model2 = wandb.Artifact("my-model", type="model")
    model2.add_file(os.path.join(src, "model2/model.pt"))
    run.log_artifact(model2, aliases=["candidate"])
    logged(model2, ["candidate"], {"model.pt": files["model2/model.pt"]})

    refs = wandb.Artifact("refs", type="dataset")
    ref = "file://" + os.path.join(src, "ref.txt")
    refs.add_reference(ref)
    run.log_artifact(refs)
    logged(refs, [], {}, refs=[("ref.txt", files["ref.txt"], ref)])

    lost = wandb.Artifact("lost-data", type="dataset")
    lost.add_file(os.path.join(src, "lost.txt"))
    run.log_artifact(lost)
    logged(lost, [], {"lost.txt": files["lost.txt"]}, missing=["lost.txt"])

    cached = wandb.Artifact("cached-data", type="dataset")
    cached.add_file(os.path.join(src, "c.txt"))
    run.log_artifact(cached)
    logged(cached, [], {"c.txt": files["c.txt"]})

    staged = {p: e.local_path for a in (lost, cached) for p, e in a.manifest.entries.items()}
    try:
        run.use_artifact(data)
        refused = False
    except TypeError:
        refused = True
    run.finish()

    # The staged copies outlive the offline run (wandb sync uploads them later); take two away.
    for p in staged.values():
        assert p and os.path.isfile(p), staged
        os.remove(p)
    cache = get_artifact_file_cache()
    path, hit, opener = cache.check_digest_obj_path(b64md5(files["c.txt"]), len(files["c.txt"]))
    with opener("wb") as f:
        f.write(files["c.txt"])
    assert str(path).startswith(os.path.join(out, "cache")), path

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"project": "runferry-artifacts", "run": "artprod1", "artifacts": expected,
                   "sources": {k: base64.b64encode(v).decode() for k, v in files.items()},
                   "use_artifact_refused_offline": refused}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
