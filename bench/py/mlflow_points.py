"""Counts what an MLflow tracking server holds, through its REST API, so the
harness can check that both sides of an MLflow benchmark wrote the same
data: active runs (of every active experiment, or of those whose name starts
with PREFIX), their metric points (full histories through get-history) and
the sum of the point values, and the params. Not timed.

Usage: python mlflow_points.py URL [PREFIX] [--expect-points N] [--merge FILE]
Prints {"runs", "points", "sum", "params"} as one JSON line (plus the keys
of the JSON object in FILE, e.g. phase timings); exits 1 when
--expect-points is given and differs.
"""
import json
import sys
import urllib.parse
import urllib.request


def call(url, path, body=None, query=None):
    full = url.rstrip("/") + "/api/2.0/mlflow/" + path
    if query:
        full += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(full, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.load(resp)


def value(v):
    return float(v)  # "NaN"/"Infinity" strings included


def main():
    args = sys.argv[1:]
    expect = None
    if "--expect-points" in args:
        i = args.index("--expect-points")
        expect = int(args[i + 1])
        del args[i:i + 2]
    merge = {}
    if "--merge" in args:
        i = args.index("--merge")
        with open(args[i + 1]) as f:
            merge = json.load(f)
        del args[i:i + 2]
    if len(args) not in (1, 2):
        sys.exit(__doc__)
    url, prefix = args[0], args[1] if len(args) == 2 else ""
    exps, token = [], None
    while True:
        body = {"max_results": 1000}
        if token:
            body["page_token"] = token
        out = call(url, "experiments/search", body)
        exps += [e["experiment_id"] for e in out.get("experiments", []) if e["name"].startswith(prefix)]
        token = out.get("next_page_token")
        if not token:
            break
    runs, points, total, params = 0, 0, 0.0, 0
    for i in range(0, len(exps), 100):
        token = None
        while True:
            body = {"experiment_ids": exps[i:i + 100], "max_results": 1000}
            if token:
                body["page_token"] = token
            out = call(url, "runs/search", body)
            for r in out.get("runs", []):
                runs += 1
                rid = r["info"]["run_id"]
                params += len(r.get("data", {}).get("params", []))
                for m in r.get("data", {}).get("metrics", []):
                    q = {"run_id": rid, "metric_key": m["key"], "max_results": 25000}
                    while True:
                        h = call(url, "metrics/get-history", query=q)
                        ms = h.get("metrics", [])
                        points += len(ms)
                        total += sum(value(p["value"]) for p in ms)
                        nxt = h.get("next_page_token")
                        if not nxt or not ms:
                            break
                        q["page_token"] = nxt
            token = out.get("next_page_token")
            if not token:
                break
    out = dict(merge)
    out.update({"runs": runs, "points": points, "sum": total, "params": params})
    print(json.dumps(out))
    if expect is not None and points != expect:
        print("mlflow_points: expected %d points, found %d" % (expect, points), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
