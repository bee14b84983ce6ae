"""Counts the metric points of a Parquet output and sums their values, so the
harness can check both sides of the end-to-end benchmark wrote the same data.

PATH is either one .parquet file (the Python pipeline's output) or a runferry
archive folder (every metrics/**/*.parquet file in it). Prints
{"points", "sum"} as one JSON line. Not timed.

Usage: python parquet_points.py PATH
"""
import glob
import json
import os
import sys

import pyarrow.compute as pc
import pyarrow.parquet as pq


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    files = [path] if os.path.isfile(path) else sorted(
        glob.glob(os.path.join(path, "metrics", "**", "*.parquet"), recursive=True))
    points, total = 0, 0.0
    for name in files:
        values = pq.read_table(name, columns=["value"]).column("value")
        points += len(values)
        total += pc.sum(values).as_py() or 0.0
    print(json.dumps({"points": points, "sum": total, "files": len(files)}))


if __name__ == "__main__":
    main()
