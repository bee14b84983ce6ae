"""The Python side of the end-to-end W&B run folder -> Parquet benchmark.

The obvious pipeline a user would write: read every run-*.wandb log under
DIR with the SDK-style reader of wandb_sdk_read.py (datastore scan + the
SDK's protobuf Record + json.loads), collect the metric points (history and
system metrics, with step and time, the same points runferry copies) in
lists, build a pandas DataFrame, sort it by key and step like runferry's
archive, and write it with pyarrow (df.to_parquet(..., compression="zstd")).
Prints {"points", "sum", "seconds"} as one JSON line.

With OUT s3://BUCKET/KEY it writes through pyarrow's S3 filesystem to the
server at $AWS_ENDPOINT_URL (path-style; keys from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY) instead (bench/s3.sh).

Usage: python wandb_to_parquet.py DIR OUT.parquet
"""
import json
import os
import sys
import time

import pandas as pd

from wandb_sdk_read import SKIP, scan, pb


def read_run(path, run, keys, steps, times, values):
    """Append the points of the .wandb file at path to the column lists."""
    loads = json.loads
    parse = pb.Record.FromString
    sample = 0
    with open(path, "rb", buffering=1 << 20) as fp:
        for payload in scan(fp):
            rec = parse(payload)
            which = rec.WhichOneof("record_type")
            if which == "history":
                row = {}
                for item in rec.history.item:
                    key = "/".join(item.nested_key) if item.nested_key else item.key
                    row[key] = loads(item.value_json)
                step = row.pop("_step", None)
                ts = row.pop("_timestamp", None)
                row.pop("_runtime", None)
                ms = int(ts * 1000) if ts is not None else None
                for key, value in row.items():
                    if key == "_wandb" or key.startswith("_wandb/"):
                        continue
                    if isinstance(value, (int, float)):
                        run.append(path)
                        keys.append(key)
                        steps.append(step)
                        times.append(ms)
                        values.append(float(value))
            elif which == "stats":
                ms = rec.stats.timestamp.seconds * 1000 + rec.stats.timestamp.nanos // 1000000
                for item in rec.stats.item:
                    value = loads(item.value_json)
                    if isinstance(value, (int, float)):
                        run.append(path)
                        keys.append("system/" + item.key)
                        steps.append(sample)
                        times.append(ms)
                        values.append(float(value))
                sample += 1


def write_s3(df, path):
    """Write df to BUCKET/KEY path on the S3 server of $AWS_ENDPOINT_URL."""
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    scheme, host = os.environ["AWS_ENDPOINT_URL"].split("://", 1)
    fs = pafs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                           secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                           region=os.environ.get("AWS_REGION", "us-east-1"),
                           endpoint_override=host, scheme=scheme, force_virtual_addressing=False)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, filesystem=fs, compression="zstd")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    run, keys, steps, times, values = [], [], [], [], []
    for folder, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            if name.startswith("run-") and name.endswith(".wandb"):
                read_run(os.path.join(folder, name), run, keys, steps, times, values)
    df = pd.DataFrame({
        "run": pd.Categorical(run),
        "key": pd.Categorical(keys),
        "step": steps,
        "time": pd.to_datetime(times, unit="ms", utc=True),
        "value": values,
    })
    df = df.sort_values(["run", "key", "step"], kind="stable")
    if out.startswith("s3://"):
        write_s3(df, out[len("s3://"):])
    else:
        df.to_parquet(out, engine="pyarrow", compression="zstd", index=False)
    seconds = time.perf_counter() - start
    print(json.dumps({"points": len(df), "sum": float(df["value"].sum()), "seconds": seconds}))


if __name__ == "__main__":
    main()
