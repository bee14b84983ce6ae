"""The Python side of the Parquet metrics-table write benchmark (bench/run.sh).

Builds the same N rows as bench/parquetwrite (one run, 20 keys, N/20 steps
each, sorted by key and step; values from the same SplitMix64 arithmetic, so
the printed "sum" must equal the Go side's) as a pyarrow Table in memory,
then times only pq.write_table(table, OUT, compression="zstd") with
pyarrow's other defaults (dictionary encoding on, 1 Mi-row row groups).
Prints {"rows", "bytes", "sum", "seconds"} as one JSON line.

Usage: python parquet_write.py ROWS OUT.parquet
"""
import json
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NUM_KEYS = 20
RUN = "wandb:bench0001"
START_MS = 1717243200000


def splitmix64(x):
    """SplitMix64 of a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def make_table(n):
    """Return (table, sum of values) for n rows."""
    steps = n // NUM_KEYS
    i = np.arange(n, dtype=np.uint64)
    k = (i // np.uint64(steps)).astype(np.int64)
    step = (i % np.uint64(steps)).astype(np.int64)
    noise = (splitmix64(i) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    base = k.astype(np.float64) + step.astype(np.float64) / float(steps)
    jitter = (noise - 0.5) * 0.01
    value = (base + jitter).astype(np.float32).astype(np.float64)
    total = 0.0
    for v in np.split(value, NUM_KEYS):  # same order as the Go loop
        total = float(np.add.accumulate(np.concatenate(([total], v)))[-1])
    keys = pa.array(["metric_%02d" % j for j in range(NUM_KEYS)])
    table = pa.table({
        "run": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([RUN])),
        "key": pa.DictionaryArray.from_arrays(pa.array(k.astype(np.int32)), keys),
        "step": pa.array(step),
        "time": pa.array(START_MS + step * 50, type=pa.timestamp("ms", tz="UTC")),
        "value": pa.array(value),
    })
    return table, total


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n, out = int(sys.argv[1]), sys.argv[2]
    if n <= 0 or n % NUM_KEYS:
        sys.exit("ROWS must be a positive multiple of 20")
    table, total = make_table(n)
    start = time.perf_counter()
    pq.write_table(table, out, compression="zstd")
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": n, "bytes": os.path.getsize(out), "sum": total, "seconds": seconds}))


if __name__ == "__main__":
    main()
