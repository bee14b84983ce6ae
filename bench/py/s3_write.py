"""The pyarrow side of the W&B folder -> parquet:s3:// benchmark (bench/s3.sh).

Writes the same Parquet files runferry wrote into a local archive (every
*.parquet under ARCHIVE, same relative keys) to an S3 server with pyarrow's
S3 filesystem (pyarrow.fs.S3FileSystem, pq.write_table, zstd level 1 like
runferry's archive). The tables are read into memory first and that read is
not timed: the timed part is only encoding and uploading, so pyarrow gets
no W&B decoding to do while runferry's side decodes the W&B logs too.
By default pyarrow writes with its own defaults (zstd 1 given): every
column dictionary-encoded (falling back to PLAIN past 1 MiB of dictionary),
1 MiB data pages, no page index. With --aligned it writes each file with
the settings runferry's file has, read from that file's metadata: the same
columns dictionary-encoded, the others with runferry's encoding
(DELTA_BINARY_PACKED steps and times, BYTE_STREAM_SPLIT values, ...), the
same row-group size, 256 KiB pages (parquet-go's page buffer) and a page
index (column and offset index), as runferry writes.
With --raw it uploads the files' bytes as they are (read into memory
first, untimed; written with open_output_stream): pyarrow's upload alone,
beside runferry's (bench/s3upload) on the same files.
Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
Prints {"files", "rows", "bytes", "seconds", "cpu_seconds"} as one JSON
line (cpu_seconds: the process's CPU time, all threads, over the timed
span).

Usage: python s3_write.py [--raw | --aligned] ARCHIVE ENDPOINT BUCKET PREFIX
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
    aligned = args[:1] == ["--aligned"]
    if raw or aligned:
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
                opts = dict(compression="zstd", compression_level=1)
                if aligned:
                    opts.update(settings_of(path))
                tables.append((os.path.relpath(path, archive), pq.read_table(path), opts))
    t0, c0 = time.perf_counter(), time.process_time()
    rows = 0
    for rel, table, opts in tables:
        pq.write_table(table, f"{bucket}/{prefix}/{rel}", filesystem=fs, **opts)
        rows += table.num_rows
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = sum(fs.get_file_info(f"{bucket}/{prefix}/{rel}").size for rel, _, _ in tables)
    print(json.dumps({"files": len(tables), "rows": rows, "bytes": size, "seconds": round(seconds, 3),
                      "cpu_seconds": round(cpu, 3)}))


# Encodings that describe levels or dictionary indexes, not a column's values.
LEVELS = {"RLE", "BIT_PACKED", "RLE_DICTIONARY", "PLAIN_DICTIONARY"}


def settings_of(path):
    """pq.write_table options that write what runferry's file at path has."""
    md = pq.ParquetFile(path).metadata
    dict_cols, encodings = [], {}
    for i in range(md.num_columns):
        c = md.row_group(0).column(i)
        name = c.path_in_schema
        if c.has_dictionary_page:
            dict_cols.append(name)
            continue
        enc = [e for e in c.encodings if e not in LEVELS]
        if len(enc) == 1 and enc[0] != "PLAIN":
            encodings[name] = enc[0]
        elif c.physical_type != "BOOLEAN":
            encodings[name] = "PLAIN"
    return dict(use_dictionary=dict_cols, column_encoding=encodings, write_page_index=True,
                data_page_size=256 << 10, row_group_size=max(md.row_group(0).num_rows, 1))


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
