"""The pyarrow side of the W&B folder -> parquet:s3:// benchmark (bench/s3.sh).

Writes the same Parquet files runferry wrote into a local archive (every
*.parquet under ARCHIVE, same relative keys) to an S3 server with pyarrow's
S3 filesystem (pyarrow.fs.S3FileSystem, pq.write_table, zstd level 1 like
runferry's archive). The tables are read into memory first and that read is
not timed: the timed part is only encoding and uploading, so pyarrow gets
no W&B decoding to do while runferry's side decodes the W&B logs too.
With --raw it uploads the files' bytes as they are (read into memory
first, untimed; written with open_output_stream): pyarrow's upload alone,
beside runferry's (bench/s3upload) on the same files.
Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Prints {"files", "rows", "bytes", "seconds"} as one JSON line.

Usage: python s3_write.py [--raw] ARCHIVE ENDPOINT BUCKET PREFIX
"""
import json
import os
import sys
import time

import pyarrow.fs as pafs
import pyarrow.parquet as pq


def main():
    args = sys.argv[1:]
    raw = args[:1] == ["--raw"]
    if raw:
        args = args[1:]
    archive, endpoint, bucket, prefix = args[:4]
    scheme, host = endpoint.split("://", 1)
    fs = pafs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=host,
        scheme=scheme,
        force_virtual_addressing=False,
    )
    if raw:
        return upload_raw(fs, archive, bucket, prefix)
    tables = []
    for dirpath, _, names in os.walk(archive):
        for name in sorted(names):
            if name.endswith(".parquet"):
                path = os.path.join(dirpath, name)
                tables.append((os.path.relpath(path, archive), pq.read_table(path)))
    t0 = time.perf_counter()
    rows = 0
    for rel, table in tables:
        pq.write_table(table, f"{bucket}/{prefix}/{rel}", filesystem=fs,
                       compression="zstd", compression_level=1)
        rows += table.num_rows
    seconds = time.perf_counter() - t0
    size = sum(fs.get_file_info(f"{bucket}/{prefix}/{rel}").size for rel, _ in tables)
    print(json.dumps({"files": len(tables), "rows": rows, "bytes": size, "seconds": round(seconds, 3)}))


def upload_raw(fs, archive, bucket, prefix):
    blobs = []
    for dirpath, dirs, names in os.walk(archive):
        dirs[:] = [d for d in dirs if d not in ("history", ".staging")]
        for name in sorted(names):
            if name.endswith(".parquet"):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    blobs.append((os.path.relpath(path, archive), f.read()))
    t0 = time.perf_counter()
    for rel, data in blobs:
        with fs.open_output_stream(f"{bucket}/{prefix}/{rel}") as out:
            out.write(data)
    seconds = time.perf_counter() - t0
    print(json.dumps({"files": len(blobs), "rows": 0, "bytes": sum(len(d) for _, d in blobs), "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    main()
