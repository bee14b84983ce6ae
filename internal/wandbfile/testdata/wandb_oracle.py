"""Independent oracle for the Go .wandb reader (used by crosscheck_test.go).

Frames each file with its own LevelDB-style reader (zlib CRC-32 over the
type byte and payload) and decodes every record with the wandb SDK's own
protobuf classes (wandb.proto.wandb_internal_pb2), then prints one JSON line
per record: {"file", "offset", "kind", "num", "digest"} and one per damage:
{"file", "offset", "damage"}. The digest holds the fields the Go test
compares; its shape must match digestRecord in crosscheck_test.go.

Usage: python wandb_oracle.py FILE.wandb...
"""
import json
import struct
import sys
import zlib

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768


def frames(data):
    """Yield (offset, payload) for every record and (offset, None) for damage."""
    if data[:4] != b":W&B" or data[4:6] != b"\xe1\xbe" or data[6:7] != b"\x00":
        raise ValueError("bad header")
    pos, partial = 7, None
    while pos < len(data):
        block_end = (pos // BLOCK + 1) * BLOCK
        if block_end - pos < 7:
            pos = block_end
            continue
        if pos + 7 > len(data):
            yield (partial[0] if partial else pos), None
            return
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if crc == 0 and length == 0 and kind == 0:
            pos = block_end
            continue
        if pos + 7 + length > min(block_end, len(data)):
            yield (partial[0] if partial else pos), None
            return
        payload = data[pos + 7:pos + 7 + length]
        if zlib.crc32(bytes([kind]) + payload) != crc:
            yield pos, None
            partial, pos = None, block_end
            continue
        if kind == 1:
            yield pos, payload
        elif kind == 2:
            partial = (pos, bytearray(payload))
        elif kind == 3 and partial:
            partial[1].extend(payload)
        elif kind == 4 and partial:
            partial[1].extend(payload)
            yield partial[0], bytes(partial[1])
            partial = None
        pos += 7 + length
    if partial:
        yield partial[0], None


def items(lst, key_only=False):
    out = []
    for i in lst:
        path = [i.key] if key_only else (list(i.nested_key) or [i.key])
        out.append([path, i.value_json])
    return out


def digest(r, kind):
    if kind == "history":
        h = r.history
        return {"items": items(h.item), "step": h.step.num if h.HasField("step") else None}
    if kind in ("summary", "config"):
        m = getattr(r, kind)
        return {"update": items(m.update), "remove": items(m.remove)}
    if kind == "stats":
        return {"items": items(r.stats.item, key_only=True), "seconds": r.stats.timestamp.seconds}
    if kind in ("output", "output_raw"):
        m = getattr(r, kind)
        return {"stream": m.output_type, "line": m.line, "seconds": m.timestamp.seconds}
    if kind == "run":
        m = r.run
        return {"run_id": m.run_id, "entity": m.entity, "project": m.project,
                "display_name": m.display_name, "notes": m.notes, "group": m.run_group,
                "job_type": m.job_type, "tags": list(m.tags),
                "git_remote": m.git.remote_url, "git_commit": m.git.commit,
                "config": items(m.config.update), "seconds": m.start_time.seconds,
                "resumed": m.resumed}
    if kind == "exit":
        return {"exit_code": r.exit.exit_code, "runtime": r.exit.runtime}
    if kind == "metric":
        m = r.metric
        return {"name": m.name, "glob_name": m.glob_name, "step_metric": m.step_metric}
    if kind == "files":
        return {"paths": [f.path for f in r.files.files], "policies": [f.policy for f in r.files.files]}
    if kind == "artifact":
        a = r.artifact
        return {"name": a.name, "type": a.type, "digest": a.digest, "aliases": list(a.aliases),
                "client_id": a.client_id, "sequence_client_id": a.sequence_client_id,
                "manifest": [a.manifest.version, a.manifest.storage_policy, a.manifest.manifest_file_path],
                "entries": [[e.path, e.digest, e.size, e.ref, e.local_path, e.birth_artifact_id]
                            for e in a.manifest.contents]}
    if kind == "use_artifact":
        u = r.use_artifact
        return {"id": u.id, "type": u.type, "name": u.name, "job_name": u.partial.job_name}
    if kind == "environment":
        e = r.environment
        return {"program": e.program, "args": list(e.args), "python": e.python, "os": e.os}
    if kind == "header":
        return {"producer": r.header.version_info.producer}
    if kind == "telemetry":
        return {"cli_version": r.telemetry.cli_version, "python_version": r.telemetry.python_version}
    return {}


def main(paths):
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        for offset, payload in frames(data):
            if payload is None:
                print(json.dumps({"file": path, "offset": offset, "damage": True}))
                continue
            r = pb.Record()
            r.ParseFromString(payload)
            kind = r.WhichOneof("record_type") or "none"
            print(json.dumps({"file": path, "offset": offset, "kind": kind, "num": r.num,
                              "digest": digest(r, kind)}, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
