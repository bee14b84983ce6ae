"""The machine's floor of a W&B cloud export with pyarrow alone, beside
bench/wandbfloor -copy (bench/wandbcloud.sh, side pyarrow-floor).

It reads the runs' parquet history exports that `wandbfloor -prepare DIR`
wrote (DIR/runNNNNN.parquet: the bytes bench/wandbserve sends, a `_step`
column, `_timestamp` in float seconds and one float column per metric) and
writes the archive's metrics layout (docs/ARCHIVE.md "Tables"): one file a
run under OUT/metrics/<run>/, long format, columns run, key, step (int64),
time (timestamp(ms, UTC), null when unknown), value (double), sorted by
run, key, step (stable: points at one step keep the export's row order),
nulls dropped. Origins and times as runferry writes them: run
`wandb:bench/bench/runNNNNN`; time from `_timestamp` seconds rounded to
microseconds, then floored to milliseconds (wandbfile.TimestampMillis).

The files are written with runferry's settings for the metrics table
(zstd level 1; `run` and `key` dictionary-encoded, step and time
DELTA_BINARY_PACKED, value BYTE_STREAM_SPLIT; row groups of 1,048,576
rows; a page index), unless --defaults is given (pyarrow's own encodings,
zstd level 1 as in bench/py/s3_write.py). --jobs N runs N files at once in
threads (pyarrow releases the GIL while it decodes, sorts and encodes;
default 4, as wandbfloor's engine copies 4 runs at once).

What it leaves out, which runferry's floor does: the ledger, the per-key
cursor digests, the runs/experiments tables, the manifest, journal and
fsyncs. So it is a floor of the points' data path, not of an archive.

Prints {"runs", "points", "seconds", "cpu_seconds"} as one JSON line (CPU
time of the process, all threads; the imports are outside it, the harness's
/usr/bin/time counts them). parquet_points.py OUT then counts the points
and sums the values as for runferry's archive.

Usage: python wandb_floor.py [--defaults] [--jobs N] DIR OUT
"""
import concurrent.futures
import glob
import json
import os
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PROJECT = "wandb:bench/bench/"
SCHEMA = pa.schema([
    pa.field("run", pa.string(), nullable=False),
    pa.field("key", pa.string(), nullable=False),
    pa.field("step", pa.int64(), nullable=False),
    pa.field("time", pa.timestamp("ms", tz="UTC")),
    pa.field("value", pa.float64(), nullable=False),
])
ALIGNED = dict(compression="zstd", compression_level=1, use_dictionary=["run", "key"],
               column_encoding={"step": "DELTA_BINARY_PACKED", "time": "DELTA_BINARY_PACKED",
                                "value": "BYTE_STREAM_SPLIT"},
               write_page_index=True, row_group_size=1 << 20, data_page_size=256 << 10,
               write_statistics=True)
DEFAULTS = dict(compression="zstd", compression_level=1)


def millis(ts):
    """_timestamp seconds (float) as runferry's time: microseconds rounded
    half away from zero (Go's math.Round), floored to milliseconds; NaN,
    infinite or out-of-range seconds, and time 0, are null (unknown)."""
    ok = pc.and_(pc.is_finite(ts), pc.less_equal(pc.abs(ts), 1e15))
    us = pc.round(pc.multiply(ts, 1e6), round_mode="half_towards_infinity")
    ms = pc.cast(pc.floor(pc.divide(us, 1000.0)), pa.int64(), safe=False)
    ms = pc.if_else(pc.and_(ok, pc.not_equal(ms, 0)), ms, pa.scalar(None, pa.int64()))
    return pc.cast(ms, pa.timestamp("ms", tz="UTC"))


def convert(path, out, opts):
    run_id = os.path.basename(path)[:-len(".parquet")]
    t = pq.read_table(path)
    step = t.column("_step").combine_chunks()
    ms = millis(t.column("_timestamp").combine_chunks()) if "_timestamp" in t.column_names else \
        pa.nulls(t.num_rows, pa.timestamp("ms", tz="UTC"))
    keys = sorted(n for n in t.column_names if not n.startswith("_"))
    parts = []
    for k in keys:
        v = t.column(k).combine_chunks()
        valid = pc.is_valid(v)
        part = pa.table({"step": step, "time": ms, "value": v}).filter(valid)
        parts.append(part.append_column("key", pa.repeat(k, part.num_rows)))
    long = pa.concat_tables(parts)
    # Sorted by key, then step; Arrow's sort is stable, so points at one
    # step keep the export's order.
    long = long.sort_by([("key", "ascending"), ("step", "ascending")])
    n = long.num_rows
    table = pa.table([pa.repeat(PROJECT + run_id, n), long.column("key"), long.column("step"),
                      long.column("time"), long.column("value")], schema=SCHEMA)
    folder = os.path.join(out, "metrics", run_id)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(table, os.path.join(folder, "000001.parquet"), **opts)
    return n


def main():
    args = sys.argv[1:]
    opts, jobs = ALIGNED, 4
    while args and args[0].startswith("--"):
        if args[0] == "--defaults":
            opts, args = DEFAULTS, args[1:]
        elif args[0] == "--jobs" and len(args) > 1:
            jobs, args = int(args[1]), args[2:]
        else:
            sys.exit(__doc__)
    if len(args) != 2:
        sys.exit(__doc__)
    src, out = args
    files = sorted(glob.glob(os.path.join(src, "run*.parquet")))
    if not files:
        sys.exit(f"wandb_floor: no run*.parquet in {src}")
    t0, c0 = time.perf_counter(), time.process_time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        points = sum(pool.map(lambda f: convert(f, out, opts), files))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"runs": len(files), "points": points, "seconds": round(seconds, 3),
                      "cpu_seconds": round(cpu, 3)}))


if __name__ == "__main__":
    main()
