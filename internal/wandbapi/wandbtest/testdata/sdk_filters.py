"""Lists the runs of one project through the real wandb SDK's public API,
once per run filter: argv[1] is ENTITY/PROJECT, stdin a JSON list of
filters (each a dict, as a user passes to wandb.Api().runs(path,
filters=...)). Prints a JSON list, per filter, of the run ids the SDK
listed, in the order it listed them. Used by runferry's tests to check the
filters runferry pushes down against the real client."""
import json
import sys

import wandb

path = sys.argv[1]
filters = json.load(sys.stdin)
api = wandb.Api(timeout=30)
out = []
for f in filters:
    # per_page=2: the SDK follows the server's cursors with the filter on
    # every page.
    out.append([r.id for r in api.runs(path, filters=f, per_page=2)])
json.dump(out, sys.stdout)
