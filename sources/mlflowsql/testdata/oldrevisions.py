"""Make MLflow SQLite stores at old alembic revisions, all holding the same
runs: the tables MLflow 1.0 created (MLflow's own InitialBase and alembic
migrations), rows written at the first revision as MLflow 1.x wrote them,
then a copy migrated by MLflow's alembic scripts to each revision named on
the command line, oldest first ("heads" for today's). Usage: oldrevisions.py OUTDIR REV...
With the one REV "all": every revision of MLflow's alembic chain, oldest
first, then "heads"; the chain is printed as a JSON list on stdout."""
import json
import shutil
import sys

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

from mlflow.store.db.utils import _get_alembic_config
from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

out, revs = sys.argv[1], sys.argv[2:]
first = "451aebb31d03"


script = ScriptDirectory.from_config(_get_alembic_config("sqlite://"))


def upgrade(path, rev):
    """alembic's command.upgrade, with MLflow's scripts loaded once for all
    the copies rather than once a copy."""
    engine = sa.create_engine("sqlite:///" + path)
    config = _get_alembic_config(str(engine.url))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        with EnvironmentContext(config, script, fn=lambda heads, _: script._upgrade_revs(rev, heads), destination_rev=rev):
            script.run_env()
    engine.dispose()


if revs == ["all"]:
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    print(json.dumps(chain))
    revs = chain + ["heads"]

base = out + "/base.db"
engine = sa.create_engine("sqlite:///" + base)
InitialBase.metadata.create_all(engine)
engine.dispose()
upgrade(base, first)
engine = sa.create_engine("sqlite:///" + base)
with engine.begin() as c:
    x = c.exec_driver_sql
    x("INSERT INTO experiments VALUES (0, 'Default', '/nonexistent/0', 'active')")
    x("INSERT INTO experiments VALUES (1, 'old-era', '/nonexistent/1', 'active')")
    x("INSERT INTO experiments VALUES (2, 'gone', '/nonexistent/2', 'deleted')")
    cols = ("run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time, "
            "end_time, source_version, lifecycle_stage, artifact_uri, experiment_id")
    runs = [
        ("a" * 32, "", "LOCAL", "train.py", "", "bob", "FINISHED", 1560000000000, 1560000100000, "", "active", "/nonexistent/1/a/artifacts", 1),
        ("b" * 32, "", "LOCAL", "train.py", "", "bob", "FAILED", 1560000200000, 1560000300000, "", "active", "/nonexistent/1/b/artifacts", 1),
        ("c" * 32, "", "LOCAL", "train.py", "", "", "RUNNING", 1560000400000, None, "", "active", "/nonexistent/1/c/artifacts", 1),
        ("d" * 32, "", "LOCAL", "train.py", "", "eve", "FINISHED", 1560000500000, 1560000600000, "", "deleted", "/nonexistent/1/d/artifacts", 1),
        ("e" * 32, "", "LOCAL", "train.py", "", "eve", "SCHEDULED", 1560000700000, 1560000800000, "", "deleted", "/nonexistent/2/e/artifacts", 2),
    ]
    for r in runs:
        x("INSERT INTO runs (" + cols + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", r)
    x("INSERT INTO tags VALUES ('mlflow.runName', 'first', ?)", ("a" * 32,))
    x("INSERT INTO tags VALUES ('mlflow.source.git.commit', 'deadbeef', ?)", ("a" * 32,))
    x("INSERT INTO tags VALUES ('mlflow.parentRunId', ?, ?)", ("a" * 32, "b" * 32))
    x("INSERT INTO tags VALUES ('custom', 'value with spaces', ?)", ("b" * 32,))
    x("INSERT INTO params VALUES ('lr', '0.1', ?)", ("a" * 32,))
    x("INSERT INTO params VALUES ('optimizer', 'sgd', ?)", ("a" * 32,))
    x("INSERT INTO params VALUES ('x', '1', ?)", ("e" * 32,))
    for step in range(20):
        x("INSERT INTO metrics (key, value, timestamp, run_uuid, step) VALUES ('loss', ?, ?, ?, ?)",
          (1.0 / (step + 1), 1560000000000 + step * 1000, "a" * 32, step))
    # two points at one step, and a key written before steps existed (step 0)
    x("INSERT INTO metrics (key, value, timestamp, run_uuid, step) VALUES ('acc', 0.5, 1560000200001, ?, 3)", ("b" * 32,))
    x("INSERT INTO metrics (key, value, timestamp, run_uuid, step) VALUES ('acc', 0.25, 1560000200000, ?, 3)", ("b" * 32,))
    x("INSERT INTO metrics (key, value, timestamp, run_uuid, step) VALUES ('m', 7.0, 1560000700000, ?, 0)", ("e" * 32,))
engine.dispose()
prev = base  # the revisions come oldest first: each copy starts from the last
for rev in revs:
    path = out + "/" + rev + ".db"
    shutil.copy(prev, path)
    upgrade(path, rev)
    prev = path
print("made", revs, file=sys.stderr)
