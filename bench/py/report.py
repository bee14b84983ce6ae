"""Bookkeeping for bench/run.sh: records measurements and writes
docs/BENCHMARKS.md.

  report.py record RESULTS BENCH SIDE REP WALL RSS_KB STDOUT_FILE CMD [CPU_S]
      appends one measurement (wall seconds, peak RSS and CPU_S, user+sys
      seconds, from /usr/bin/time;
      the JSON the command printed) to RESULTS (JSON lines).
  report.py write RESULTS FACTS_JSON NOTES_MD GO_BENCH_TXT OUT_MD
      computes medians and ratios, checks that both sides of every
      comparison saw the same points, and writes OUT_MD. Exits 1 when a
      comparison is invalid (different point counts or sums).
  report.py keep RESULTS SECTION
      drops the rows of SECTION ("mlflow" or "default") from RESULTS, which
      is about to be measured again, keeps the others and prints a note
      saying so.
"""
import json
import statistics
import sys

# What each comparison measures and its target. "ours"/"theirs" name sides;
# "metric" is "wall" (process wall time) or "inner" (the seconds the program
# itself reports, for comparisons that exclude building the input), or
# "rate" (points per second: ours is the points the destination holds
# afterwards over the process's wall time, theirs the ceiling the
# comparison's "ceiling" key names in what bench/mlflowceiling printed; the
# ratio is ours / theirs).
COMPARISONS = [
    {
        "bench": "wandb-decode",
        "title": "Decode a .wandb log into metric points (issue 3)",
        "ours": "go-source", "theirs": "python-sdk", "metric": "wall", "target": 20.0,
        "what": "wandb source adapter (wandbdir: Experiments, Runs, Metrics) vs the SDK-style Python reader",
    },
    {
        "bench": "wandb-decode",
        "title": "Decode a .wandb log into metric points, package only (diagnostic: the general Decode API)",
        "ours": "go-file", "theirs": "python-sdk", "metric": "wall", "target": None,
        "what": "internal/wandbfile (Reader, Decode, ParseValueJSON) vs the same Python reader",
    },
    {
        "bench": "tensorboard-read",
        "title": "Read TensorBoard event files into metric points (issue 16)",
        "ours": "go-source", "theirs": "event-accumulator", "metric": "wall", "target": 20.0,
        "what": "tensorboard source adapter (Experiments, Runs, Metrics) vs tensorboard's EventAccumulator with size guidance keeping everything",
    },
    {
        "bench": "parquet-write",
        "title": "Write the metrics table to Parquet from memory (issue 4)",
        "ours": "go-parquet", "theirs": "pyarrow", "metric": "inner", "target": 1.0,
        "what": "parquet-go with archive.MetricRow (zstd, dict run/key) vs pq.write_table(compression='zstd')",
    },
    {
        "bench": "e2e-parquet",
        "title": "W&B run folder to Parquet, end to end (issue 4)",
        "ours": "runferry-copy", "theirs": "python-pandas", "metric": "wall", "target": 10.0,
        "what": "runferry copy wandb:DIR parquet:OUT vs SDK-style reader -> pandas -> pyarrow",
    },
    {
        "bench": "wandb-cloud-sdk",
        "title": "W&B cloud project to Parquet (test server: GraphQL 10 req/s, 100 ms a request), vs the wandb SDK's scan_history loop, both on the same subset of the runs (issue 13)",
        "ours": "runferry-copy", "theirs": "sdk-scan-history", "metric": "wall", "target": 10.0,
        "what": "runferry copy wandb+http://.../bench/subset parquet:OUT vs for run in api.runs(): run.scan_history(), the same server and project (the first BENCH_WANDB_CLOUD_SDK_RUNS runs)",
    },
    {
        "bench": "wandb-cloud",
        "title": "W&B cloud project to Parquet, share of the lower bound the rate limit and latency set (target: within 20%)",
        "ours": "runferry-copy", "theirs": "lower-bound", "metric": "wall", "target": 0.83,
        "what": "runferry's time vs (project + listing pages: the listing carries each run's parquetHistory, files and artifacts) requests, less the server's initial bucket, at the rate, plus one latency",
    },
    {
        "bench": "wandb-cloud",
        "title": "W&B cloud project to Parquet, share of the same copy without rate limit and latency (what the limit and latency cost; target: within 20%)",
        "ours": "runferry-copy", "theirs": "runferry-unthrottled", "metric": "wall", "target": 0.83,
        "what": "runferry's time against the limited server vs the same copy right after with the limit and latency lifted (POST /_bench/limit)",
    },
    {
        "bench": "wandb-cloud",
        "title": "W&B cloud project to Parquet, share of the machine's floor (the same exports decoded and archived from disk, no server; the issue's target is the lower-bound row: where the floor is above the bound, the machine binds)",
        "ours": "runferry-copy", "theirs": "machine-floor", "metric": "wall", "target": 0.83,
        "what": "runferry's time against the limited server vs bench/wandbfloor -copy: the same runs' parquet exports from disk, decoded as the W&B cloud source decodes them and written through runferry's engine and Parquet sink with a fresh ledger",
    },
    {
        "bench": "wandb-cloud",
        "title": "W&B cloud exports to the archive's metrics layout: runferry's machine floor vs pyarrow alone (an independent floor; no target)",
        "ours": "machine-floor", "theirs": "pyarrow-floor", "metric": "wall", "target": None,
        "what": "bench/wandbfloor -copy vs bench/py/wandb_floor.py: the same exports from disk into long-format metrics files (run, key, step, time, value; sorted by key and step; runferry's encodings), pyarrow without ledger, digests or manifest",
    },
    {
        "bench": "wandb-cloud-bound",
        "title": "W&B cloud project to Parquet where the rate limit binds (runs with system metrics: one request a run), share of the lower bound (target: within 20%)",
        "ours": "runferry-copy", "theirs": "lower-bound", "metric": "wall", "target": 0.83,
        "what": "a first copy (fresh ledger) of BENCH_WANDB_CLOUD_BIND_RUNS runs with system metrics vs (project + listing pages + one events request a run) requests, less the initial bucket, at the rate, plus one latency",
    },
    {
        "bench": "wandb-cloud-system",
        "title": "W&B cloud project to Parquet at the issue's size with system metrics as the SDK writes them (one events request a run), share of the lower bound (target: within 20%)",
        "ours": "runferry-copy", "theirs": "lower-bound", "metric": "wall", "target": 0.83,
        "what": "a first copy of BENCH_WANDB_CLOUD_RUNS runs x BENCH_WANDB_CLOUD_STEPS steps, each with BENCH_WANDB_CLOUD_SYSTEM_EVENTS rows of BENCH_WANDB_CLOUD_SYSTEM_KEYS system metrics, vs (project + listing pages + one events request a run) requests, less the initial bucket, at the rate, plus one latency; the floor of the same histories is bench wandb-cloud's machine-floor",
    },
    {
        "bench": "mlflow-ceiling",
        "title": "Parquet archive into MLflow, share of the server's sustained log-batch ceiling",
        "ours": "runferry-copy", "theirs": "ceiling", "metric": "rate", "target": 0.9,
        "ceiling": "confirm_points_per_s",
        "what": "runferry copy parquet:DIR mlflow+http://... vs bench/mlflowceiling's best grid point re-measured for BENCH_CEILING_CONFIRM seconds (fresh SQLite server each)",
    },
    {
        "bench": "mlflow-ceiling",
        "title": "Parquet archive into MLflow, share of the best grid sample (upper bound, biased up)",
        "ours": "runferry-copy", "theirs": "ceiling", "metric": "rate", "target": None,
        "ceiling": "ceiling_points_per_s",
        "what": "the same copies vs the highest of the 13 grid samples",
    },
    {
        "bench": "mlflow-mlflow",
        "title": "MLflow to MLflow, vs mlflow-export-import",
        "ours": "runferry-copy", "theirs": "export-import", "metric": "wall", "target": 5.0,
        "what": "runferry copy mlflow+SRC mlflow+DST vs export-experiment then import-experiment (fresh destination each)",
    },
    {
        "bench": "mlflow-ceiling-pg",
        "title": "Parquet archive into MLflow (PostgreSQL store, BENCH_MLFLOW_PG_WORKERS workers), share of the sustained ceiling",
        "ours": "runferry-copy", "theirs": "ceiling", "metric": "rate", "target": 0.9,
        "ceiling": "confirm_points_per_s",
        "what": "as above, servers with a PostgreSQL backend store and BENCH_MLFLOW_PG_WORKERS workers",
    },
    {
        "bench": "mlflow-ceiling-pg",
        "title": "Parquet archive into MLflow (PostgreSQL store, BENCH_MLFLOW_PG_WORKERS workers), share of the best grid sample",
        "ours": "runferry-copy", "theirs": "ceiling", "metric": "rate", "target": None,
        "ceiling": "ceiling_points_per_s",
        "what": "the same copies vs the highest of the 13 grid samples",
    },
    {
        "bench": "mlflow-mlflow-pg",
        "title": "MLflow to MLflow (PostgreSQL stores, BENCH_MLFLOW_PG_WORKERS workers), vs mlflow-export-import",
        "ours": "runferry-copy", "theirs": "export-import", "metric": "wall", "target": 5.0,
        "what": "as above, both servers with a PostgreSQL backend store and BENCH_MLFLOW_PG_WORKERS workers",
    },
    {
        "bench": "mlflowfile-read",
        "title": "Read an MLflow file store directly vs through a real MLflow server serving it (issue 14)",
        "ours": "direct", "theirs": "server", "metric": "wall", "target": 10.0,
        "what": "bench/readmlflow on mlflow+file:STORE vs the same program on mlflow+http:// (runferry's MLflow source) with `mlflow server` serving that store",
    },
]

# Sections of bench/run.sh (RUNFERRY_BENCH_ONLY) and their benches.
SECTIONS = {"mlflowfile": {"mlflowfile-read"}, "mlflow": {"mlflow-ceiling", "mlflow-mlflow", "mlflow-ceiling-pg", "mlflow-mlflow-pg"},
            "tensorboard": {"tensorboard-read", "tensorboard-read-10x"},
            "wandbcloud": {"wandb-cloud", "wandb-cloud-sdk", "wandb-cloud-bound", "wandb-cloud-system"}}

# Peak-RSS targets: (bench, side, limit in MB, label).
RSS_TARGETS = [
    ("wandb-decode", "go-source", 100, "peak RSS streaming the log through the adapter (issue 3)"),
    ("wandb-decode", "go-file", 100, "peak RSS streaming the log, package only"),
    ("tensorboard-read", "go-source", 100, "peak RSS reading 250k TensorBoard points (issue 16)"),
    ("tensorboard-read-10x", "go-source", 100, "peak RSS reading ten times as many: flat (issue 16)"),
    ("large-copy", "runferry-copy", 256, "peak RSS archiving 100M points (issue 4, make bench-large)"),
    ("wandb-cloud", "runferry-copy", 256, "peak RSS exporting a W&B cloud project (issue 13)"),
]


def record(path, bench, side, rep, wall, rss, stdout_file, cmd, cpu=None):
    with open(stdout_file) as f:
        text = f.read().strip()
    try:
        out = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        out = {"raw": text[-500:]}
    line = {"bench": bench, "side": side, "rep": int(rep), "wall": float(wall),
            "rss_kb": int(rss), "out": out, "cmd": cmd}
    if cpu is not None:
        line["cpu"] = float(cpu)  # user+sys seconds of the command and its children
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def seconds(m, metric, ceiling="ceiling_points_per_s"):
    if metric == "rate":
        o = m["out"]
        if "ceiling_points_per_s" in o:
            return o.get(ceiling)  # None when not measured (BENCH_CEILING_CONFIRM=0)
        return o.get("points", 0) / m["wall"] if m["wall"] > 0 else 0.0
    return m["out"].get("seconds", m["wall"]) if metric == "inner" else m["wall"]


def fmt_rate(x):
    return "%.0f points/s" % x


def fmt_s(x):
    return "%.2f s" % x if x < 100 else "%.0f s" % x


def write(results_path, facts_path, notes_path, gobench_path, out_path):
    results = load(results_path)
    with open(facts_path) as f:
        facts = json.load(f)
    by = {}
    for m in results:
        by.setdefault((m["bench"], m["side"]), []).append(m)

    problems = []
    # Every side of a bench must have seen the same points (count exact, sum
    # to 1e-9 relative: the sides add in different orders).
    for bench in sorted({b for b, _ in by}):
        seen = [(side, m["out"]) for (b, side), ms in by.items() if b == bench for m in ms]
        ref = next(((s, o) for s, o in seen if "points" in o or "rows" in o), None)
        if ref is None:
            continue
        for side, o in seen:
            count = o.get("points", o.get("rows"))
            rcount = ref[1].get("points", ref[1].get("rows"))
            if count is None:
                continue  # a side that measures something else (the MLflow ceiling)
            if count != rcount:
                problems.append("%s: %s saw %s points, %s saw %s" % (bench, side, count, ref[0], rcount))
                continue
            if "runs" in o and "runs" in ref[1] and o["runs"] != ref[1]["runs"]:
                problems.append("%s: %s saw %s runs, %s saw %s" % (bench, side, o.get("runs"), ref[0], ref[1].get("runs")))
            a, b = o.get("sum"), ref[1].get("sum")
            if a is not None and b is not None and abs(a - b) > 1e-9 * max(abs(a), abs(b), 1.0):
                problems.append("%s: %s sum %r differs from %s sum %r" % (bench, side, a, ref[0], b))

    lines = []
    w = lines.append
    w("# Benchmarks")
    w("")
    w("Generated by `make bench` (`bench/run.sh`); do not edit by hand except `bench/NOTES.md`, "
      "which is copied into the Notes section. Timings come from a shared 2-core machine where "
      "other work runs at the same time: both sides of each comparison run in the same job, "
      "interleaved, %d times, and the tables show medians." % facts["repeat"])
    w("")
    w("## Machine and run")
    w("")
    for key in ("date", "commit", "sections", "cpu", "nproc", "memory", "os", "go", "python", "packages", "load_before", "load_after", "scratch"):
        if key in facts:
            w("- %s: %s" % (key.replace("_", " "), facts[key]))
    w("")
    w("## Results")
    w("")
    w("Ratio = their median time / our median time, or for rates our median rate / theirs "
      "(higher is better for us).")
    w("")
    w("| comparison | ours (median) | theirs (median) | ratio | target | met? |")
    w("|---|---|---|---|---|---|")
    for c in COMPARISONS:
        ours, theirs = by.get((c["bench"], c["ours"])), by.get((c["bench"], c["theirs"]))
        if not ours or not theirs:
            w("| %s | not run | not run | | %s | |" % (c["title"], "-" if c["target"] is None else fmt_num(c["target"]) + "x"))
            continue
        key = c.get("ceiling", "ceiling_points_per_s")
        os_ = [seconds(m, c["metric"], key) for m in ours]
        ts = [seconds(m, c["metric"], key) for m in theirs]
        if None in os_ or None in ts:
            w("| %s | n/a | n/a (not measured) | | %s | |" % (c["title"], "-" if c["target"] is None else fmt_num(c["target"]) + "x"))
            continue
        o, t = statistics.median(os_), statistics.median(ts)
        if c["metric"] == "rate":
            ratio = o / t if t > 0 else float("inf")
            if c["target"] is None:
                w("| %s | %s | %s | %.2fx | - | - |" % (c["title"], fmt_rate(o), fmt_rate(t), ratio))
                continue
            met = "yes" if ratio >= c["target"] else "**no**"
            w("| %s | %s | %s | %.2fx | %sx | %s |" % (c["title"], fmt_rate(o), fmt_rate(t), ratio, fmt_num(c["target"]), met))
            continue
        ratio = t / o if o > 0 else float("inf")
        if c["target"] is None:
            w("| %s | %s | %s | %.1fx | - | - |" % (c["title"], fmt_s(o), fmt_s(t), ratio))
            continue
        met = "yes" if ratio >= c["target"] else "**no**"
        w("| %s | %s | %s | %.1fx | %sx | %s |" % (c["title"], fmt_s(o), fmt_s(t), ratio, fmt_num(c["target"]), met))
    w("")
    w("| memory and size | measured (median) | target | met? |")
    w("|---|---|---|---|")
    for bench, side, limit, label in RSS_TARGETS:
        ms = by.get((bench, side))
        if not ms:
            w("| %s | not run | < %d MB | |" % (label, limit))
            continue
        rss = statistics.median(m["rss_kb"] for m in ms) / 1024
        w("| %s | %.0f MB | < %d MB | %s |" % (label, rss, limit, "yes" if rss < limit else "**no**"))
    ours, theirs = by.get(("parquet-write", "go-parquet")), by.get(("parquet-write", "pyarrow"))
    if ours and theirs:
        ob, tb = ours[0]["out"]["bytes"], theirs[0]["out"]["bytes"]
        ratio = ob / tb
        w("| metrics file size, ours / pyarrow's (%s / %s) | %.2f | <= 1.10 | %s |" % (
            mb(ob), mb(tb), ratio, "yes" if ratio <= 1.10 else "**no**"))
    w("")
    if problems:
        w("**INVALID:** the sides of a comparison did not see the same data:")
        w("")
        for p in problems:
            w("- " + p)
        w("")
    w("## Every measurement")
    w("")
    w("| bench | side | rep | wall | program's own seconds | peak RSS | points/rows | sum |")
    w("|---|---|---|---|---|---|---|---|")
    for m in results:
        o = m["out"]
        secs = fmt_s(o["seconds"]) if "seconds" in o else ""
        if "ceiling_points_per_s" in o:
            secs = "best sample %s (batch %s, %s in flight), sustained %s" % (
                fmt_rate(o["ceiling_points_per_s"]), o.get("best_batch"), o.get("best_conc"),
                fmt_rate(o["confirm_points_per_s"]) if o.get("confirm_points_per_s") else "n/a")
        elif m["bench"].startswith("mlflow-") and "points" in o:
            secs = "%s into the server" % fmt_rate(o["points"] / m["wall"])
            if "export_s" in o:
                secs += "; export %s, import %s" % (fmt_s(o["export_s"]), fmt_s(o["import_s"]))
        w("| %s | %s | %d | %s | %s | %.0f MB | %s | %s |" % (
            m["bench"], m["side"], m["rep"], fmt_s(m["wall"]), secs, m["rss_kb"] / 1024,
            o.get("points", o.get("rows", "")), repr(o["sum"]) if "sum" in o else ""))
    w("")
    w("## Commands")
    w("")
    w("Inputs (generated once into the scratch folder, reused while the generator is unchanged):")
    w("")
    w("```sh")
    for cmd in facts.get("inputs", []):
        w(cmd)
    w("```")
    w("")
    w("Measured, each under `/usr/bin/time -f '%e %M'` (wall seconds, maximum resident set size):")
    w("")
    w("```sh")
    seen_cmds = []
    for m in results:
        key = (m["bench"], m["side"])
        if key not in [k for k, _ in seen_cmds]:
            seen_cmds.append((key, m["cmd"]))
    for (bench, side), cmd in seen_cmds:
        w("# %s, %s" % (bench, side))
        w(cmd)
    w("```")
    w("")
    try:
        with open(gobench_path) as f:
            gob = [l.rstrip() for l in f if l.startswith(("Benchmark", "goos", "goarch", "pkg", "cpu"))]
    except OSError:
        gob = []
    if gob:
        w("## Go microbenchmarks")
        w("")
        w("`go test -run='^$' -bench=. -benchmem ./...`:")
        w("")
        w("```")
        lines.extend(gob)
        w("```")
        w("")
    w("## Notes")
    w("")
    with open(notes_path) as f:
        notes = f.read().strip().splitlines()
    if notes and notes[0].startswith("# "):
        notes = notes[1:]
    lines.extend(notes)
    w("")
    with open(out_path, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    for p in problems:
        print("INVALID:", p, file=sys.stderr)
    return 1 if problems else 0


def keep(results_path, section):
    drop = SECTIONS.get(section)
    results = load(results_path)
    if drop is None:  # "default": every bench outside the named sections
        named = set().union(*SECTIONS.values())
        kept = [m for m in results if m["bench"] in named]
    else:
        kept = [m for m in results if m["bench"] not in drop]
    with open(results_path, "w") as f:
        for m in kept:
            f.write(json.dumps(m) + "\n")
    benches = sorted({m["bench"] for m in kept})
    if benches:
        print("rows of %s are kept from an earlier run" % ", ".join(benches))
    return 0


def fmt_num(x):
    return "-" if x is None else ("%g" % x)


def mb(n):
    return "%.1f MB" % (n / 1e6)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "record" and len(sys.argv) in (10, 11):
        record(*sys.argv[2:])
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "keep":
        return keep(*sys.argv[2:])
    if len(sys.argv) == 7 and sys.argv[1] == "write":
        return write(*sys.argv[2:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
