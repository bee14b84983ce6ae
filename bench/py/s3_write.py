"""The pyarrow side of the W&B folder -> parquet:s3:// benchmark (bench/s3.sh).

Writes the same Parquet files runferry wrote into a local archive (every
*.parquet under ARCHIVE, same relative keys) to an S3 server with pyarrow's
S3 filesystem (pyarrow.fs.S3FileSystem, pq.write_table, zstd level 1 like
runferry's archive). The tables are read into memory first and that read is
not timed: the timed part is only encoding and uploading, so pyarrow gets
no W&B decoding to do while runferry's side decodes the W&B logs too.
Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Prints {"files", "rows", "bytes", "seconds"} as one JSON line.

Usage: python s3_write.py ARCHIVE ENDPOINT BUCKET PREFIX
"""
import json
import os
import sys
import time

import pyarrow.fs as pafs
import pyarrow.parquet as pq


def main():
    archive, endpoint, bucket, prefix = sys.argv[1:5]
    scheme, host = endpoint.split("://", 1)
    fs = pafs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=host,
        scheme=scheme,
        force_virtual_addressing=False,
    )
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


if __name__ == "__main__":
    main()
