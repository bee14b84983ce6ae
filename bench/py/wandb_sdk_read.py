"""The Python side of the .wandb decoding benchmark (bench/run.sh).

Reads one .wandb file the way the wandb SDK's Python reader did, turns it
into metric points and prints {"points", "sum", "records", "seconds"} as one
JSON line. It is the "obvious Python" a user would write to get metrics out
of a run folder without W&B's servers:

  1. framing: the SDK's datastore scan (wandb.sdk.internal.datastore.DataStore
     in SDK < 0.19; SDK 0.31.0, pinned in requirements-test.txt, no longer
     ships it because wandb-core, a Go binary, reads and writes the log).
     The scan is re-implemented here with the same algorithm: per chunk, read
     the 7-byte header and the payload from a buffered file, check the
     CRC-32 (zlib) over type byte + payload, join FIRST/MIDDLE/LAST chunks,
     skip block tails shorter than a header;
  2. every record parsed with the SDK's own protobuf class,
     wandb.proto.wandb_internal_pb2.Record (upb C backend);
  3. every history and stats item's value_json parsed with json.loads.

Point semantics match sources/wandbdir and bench/readwandb: a history item
is a point unless its key is _step, _timestamp, _runtime or under _wandb; a
stats item is a point (key "system/" + key); only int, float and bool values
count (bools as 0/1). Keys are item paths joined with "/".

Usage: python wandb_sdk_read.py FILE.wandb
"""
import json
import struct
import sys
import time
import zlib

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
HEADER = 7
SKIP = frozenset(("_step", "_timestamp", "_runtime"))
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_chunk_header = struct.Struct("<IHB")


def scan(fp):
    """Yield each record payload of the open .wandb file fp."""
    head = fp.read(HEADER)
    if head[:4] != b":W&B" or head[4:6] != b"\xe1\xbe" or head[6:7] != b"\x00":
        raise ValueError("not a .wandb file")
    pos = HEADER
    parts = None
    while True:
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            fp.read(left)  # zero padding at a block end
            pos += left
        hdr = fp.read(HEADER)
        if len(hdr) < HEADER:
            return
        checksum, length, kind = _chunk_header.unpack(hdr)
        data = fp.read(length)
        pos += HEADER + length
        if len(data) < length:
            return  # truncated tail
        if zlib.crc32(data, zlib.crc32(bytes((kind,)))) != checksum:
            raise ValueError("checksum mismatch at offset %d" % (pos - HEADER - length))
        if kind == FULL:
            yield data
        elif kind == FIRST:
            parts = [data]
        elif kind == MIDDLE:
            parts.append(data)
        elif kind == LAST:
            parts.append(data)
            yield b"".join(parts)
            parts = None


def read_points(path):
    """Return (points, sum, records) of the .wandb file at path."""
    points = 0
    total = 0.0
    records = 0
    loads = json.loads
    parse = pb.Record.FromString
    with open(path, "rb", buffering=1 << 20) as fp:
        for payload in scan(fp):
            records += 1
            rec = parse(payload)
            which = rec.WhichOneof("record_type")
            if which == "history":
                for item in rec.history.item:
                    key = "/".join(item.nested_key) if item.nested_key else item.key
                    if key in SKIP or key == "_wandb" or key.startswith("_wandb/"):
                        continue
                    value = loads(item.value_json)
                    if isinstance(value, (int, float)):
                        points += 1
                        total += value
            elif which == "stats":
                for item in rec.stats.item:
                    key = "system/" + item.key
                    value = loads(item.value_json)
                    if isinstance(value, (int, float)):
                        points += 1
                        total += value
    return points, total, records


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    start = time.perf_counter()
    points, total, records = read_points(sys.argv[1])
    seconds = time.perf_counter() - start
    print(json.dumps({"points": points, "sum": total, "records": records, "seconds": seconds}))


if __name__ == "__main__":
    main()
