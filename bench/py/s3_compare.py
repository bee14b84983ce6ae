"""Compares two sets of Parquet tables in an S3 bucket (bench/s3.sh).

Reads, with pyarrow's S3 filesystem, every *.parquet file under
BUCKET/PREFIX_A/<table>/ and BUCKET/PREFIX_B/<table>/ (files under
.staging/ and history/ left out), for each table folder PREFIX_A holds, and
checks that both sides hold the same schema and rows (as multisets:
each side sorted by its non-nested columns). bench/s3.sh gives it the archive runferry's writer wrote
from memory and the files pyarrow wrote from the same tables, so the two
writers are shown to have written the same points. Exits 1 naming the
first table that differs; else prints {"tables": {name: rows}} as one JSON
line. --ignore TABLE.COLUMN (repeatable) leaves a column out of the
comparison: the runs table's fingerprint names the source a run was read
from (a W&B folder's file stamps, or a digest of the run's fields for a
run copied from memory), not what was written. Credentials from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.

Usage: python s3_compare.py [--ignore TABLE.COLUMN]... ENDPOINT BUCKET PREFIX_A PREFIX_B
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


def tables(fs, root):
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        rel = info.path[len(root) + 1:]
        parts = rel.split("/")
        if info.type != pafs.FileType.File or not rel.endswith(".parquet") or parts[0] in (".staging", "history"):
            continue
        out.setdefault(parts[0], []).append(pq.read_table(info.path, filesystem=fs))
    return {name: pa.concat_tables(ts) for name, ts in out.items()}


def ordered(table):
    """table sorted by every column of a sortable (non-nested) type."""
    keys = [(f.name, "ascending") for f in table.schema if not pa.types.is_nested(f.type)]
    return table.sort_by(keys) if keys else table


def main():
    args, ignore = sys.argv[1:], {}
    while args[:1] == ["--ignore"]:
        table, column = args[1].split(".", 1)
        ignore.setdefault(table, []).append(column)
        args = args[2:]
    endpoint, bucket, a, b = args[:4]
    scheme, host = endpoint.split("://", 1)
    fs = pafs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_override=host,
        scheme=scheme,
        force_virtual_addressing=False,
    )
    ta, tb = tables(fs, f"{bucket}/{a}"), tables(fs, f"{bucket}/{b}")
    counts = {}
    for name in sorted(ta):
        if name not in tb:
            sys.exit(f"s3_compare: table {name}: in {a}, not in {b}")
        xa, xb = ta[name], tb[name]
        for column in ignore.get(name, []):
            xa, xb = xa.drop_columns([column]), xb.drop_columns([column])
        if not xa.schema.equals(xb.schema):
            sys.exit(f"s3_compare: table {name}: schema\n{xa.schema}\nin {a},\n{xb.schema}\nin {b}")
        if not ordered(xa).equals(ordered(xb)):
            sys.exit(f"s3_compare: table {name}: {xa.num_rows} rows in {a}, {xb.num_rows} in {b}, not the same")
        counts[name] = xa.num_rows
    print(json.dumps({"tables": counts, "ignored": ignore}))


if __name__ == "__main__":
    main()
