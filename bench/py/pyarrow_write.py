"""The Python side of the Parquet metrics-table write benchmark.

Builds N rows of the archive's metrics table in memory with numpy/pyarrow
(one run, 20 keys metric_00..metric_19, N/20 steps each, sorted by key and
step as the archive stores them; the same arithmetic as
bench/parquetwrite, so "sum" must be equal), then times
pyarrow.parquet.write_table(table, OUT, compression="zstd") alone (pyarrow's
defaults otherwise: zstd level 1, dictionary encoding with fallback, 1 Mi
rows per row group, 1 MB pages) and prints {"rows", "bytes", "sum",
"seconds", "cpu_seconds", "strings"} as one JSON line (seconds: wall clock;
cpu_seconds: the process's CPU time, all threads, during the write).

Usage: python pyarrow_write.py [--rows N] [--strings plain|dict] OUT.parquet

--strings plain (default) holds run and key as plain string columns, the
table schema as specified; --strings dict holds them as dictionary arrays
(pandas categoricals), which pyarrow writes without hashing every string.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NUM_KEYS = 20
RUN_ORIGIN = "wandb:bench0001"
START_MS = 1717243200000  # 2024-06-01T12:00:00Z


def splitmix64(x):
    """SplitMix64's output function of a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def make_table(n, strings):
    steps = n // NUM_KEYS
    i = np.arange(n, dtype=np.uint64)
    k = (i // np.uint64(steps)).astype(np.int64)
    step = (i % np.uint64(steps)).astype(np.int64)
    noise = (splitmix64(i) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    base = k.astype(np.float64) + step.astype(np.float64) / float(steps)
    jitter = (noise - 0.5) * 0.01
    value = (base + jitter).astype(np.float32).astype(np.float64)
    del i, noise, base, jitter
    keys = np.array(["metric_%02d" % j for j in range(NUM_KEYS)], dtype=object)
    if strings == "dict":
        run = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([RUN_ORIGIN]))
        key = pa.DictionaryArray.from_arrays(pa.array(k.astype(np.int32)), pa.array(list(keys)))
    else:
        run = pa.array(np.full(n, RUN_ORIGIN, dtype=object), type=pa.string())
        key = pa.array(keys[k], type=pa.string())
    time_ms = pa.array(START_MS + step * 50, type=pa.timestamp("ms", tz="UTC"))
    table = pa.table({"run": run, "key": key, "step": pa.array(step), "time": time_ms, "value": pa.array(value)})
    return table, float(value.sum(dtype=np.float64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=50_000_000, help="rows to write (a multiple of 20)")
    ap.add_argument("--strings", choices=("plain", "dict"), default="plain")
    ap.add_argument("out")
    args = ap.parse_args()
    if args.rows <= 0 or args.rows % NUM_KEYS:
        sys.exit("usage: pyarrow_write.py [--rows N] OUT.parquet   (N a multiple of 20)")
    table, total = make_table(args.rows, args.strings)
    cpu0, start = time.process_time(), time.perf_counter()
    pq.write_table(table, args.out, compression="zstd")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    print(json.dumps({"rows": table.num_rows, "bytes": os.path.getsize(args.out), "sum": total,
                      "seconds": seconds, "cpu_seconds": cpu, "strings": args.strings}))


if __name__ == "__main__":
    main()
