# testenv's MLflow server launcher (internal/testenv/mlflowserve.go embeds it; Python only
# for tests). It runs MLflow's own `mlflow server` command with the arguments it is given,
# unchanged, except for one step: where `mlflow server` would start uvicorn in a child
# process (`python -m uvicorn ... mlflow.server.fastapi_app:app`, which imports MLflow a
# second time), this process runs that same uvicorn command itself, with the environment
# `mlflow server` built for the child. The stores the command initialised (migrations, the
# Default experiment) are the ones the app then serves; the app is MLflow's FastAPI app.
#
# It does so only when the result is the same as the child's: mlflow.server sets up part of
# its Flask app when it is imported (the security middleware, from MLFLOW_SERVER_ALLOWED_HOSTS
# and the like, when it sees a server: uvicorn imported or the store variables set), so it is
# imported here after uvicorn, and the environment it saw is compared with the child's. Any
# difference beyond the variables MLflow reads only while serving (LAZY), or a command other
# than `python -m uvicorn` with --workers 1, starts the child as `mlflow server` does. The
# log says which ("testenv: uvicorn in process" or "testenv: uvicorn in a child process").
#
# A SQLite store's connections run with PRAGMA synchronous=OFF (unless
# RUNFERRY_TESTENV_SQLITE_SYNC=1): SQLite then hands its writes to the OS without waiting for
# the disk (fsync) at each commit. A killed server loses nothing by it (the OS keeps what was
# written; only an OS crash or power loss could), so tests that kill the server prove what
# they did; only the waits on the disk go (docs/TESTING.md). testenv's PostgreSQL and MariaDB
# run with fsync off for the same reason. The log says "testenv: SQLite synchronous=0", read
# back from the store's first connection.
import os
import sqlite3
import sys

import uvicorn  # noqa: F401  (first, as in uvicorn's own process: mlflow.server sees a server)
from uvicorn.main import main as uvicorn_command

import mlflow.server
from mlflow.cli import cli

# Variables `mlflow server` sets for its child that MLflow reads only inside functions called
# while serving, never when a module is imported (checked against the venv's MLflow 3.17.2:
# handlers' _get_*_store and artifact helpers, the gateway store's lazy secret_cache, the
# sandbox's boot id, auth's server name): the stores, the artifact proxy, the secrets cache
# and per-boot markers.
LAZY = frozenset({
    "_MLFLOW_SERVER_FILE_STORE",
    "_MLFLOW_SERVER_REGISTRY_STORE",
    "_MLFLOW_SERVER_ARTIFACT_ROOT",
    "_MLFLOW_SERVER_SERVE_ARTIFACTS",
    "_MLFLOW_SERVER_ARTIFACT_DESTINATION",
    "_MLFLOW_SERVER_BOOT_ID",
    "_MLFLOW_SGI_NAME",
    "_MLFLOW_IN_JOB_EXECUTOR",
    "MLFLOW_SERVER_SECRETS_CACHE_TTL",
    "MLFLOW_SERVER_SECRETS_CACHE_MAX_SIZE",
})

_seen = dict(os.environ)  # what mlflow.server's import-time setup saw
_exec_cmd = mlflow.server._exec_cmd


def _why_not(cmd, extra_env, kwargs):
    if [str(c) for c in cmd[:3]] != [sys.executable, "-m", "uvicorn"]:
        return "not python -m uvicorn: %r" % (cmd[:3],)
    args = [str(c) for c in cmd]
    if "--workers" not in args or args[args.index("--workers") + 1] != "1":
        return "not --workers 1"
    if kwargs.get("synchronous", True):
        return "a synchronous command"
    env = dict(os.environ)
    env.update(extra_env or {})
    differ = sorted(k for k in set(env) | set(_seen) if k not in LAZY and env.get(k) != _seen.get(k))
    if differ:
        return "environment differs from mlflow.server's import: " + ", ".join(differ)
    return None


def _serve(cmd, *, extra_env=None, **kwargs):
    why = _why_not(cmd, extra_env, kwargs)
    if why:
        print("testenv: uvicorn in a child process (%s)" % why, file=sys.stderr, flush=True)
        return _exec_cmd(cmd, extra_env=extra_env, **kwargs)
    os.environ.update(extra_env or {})
    print("testenv: uvicorn in process", file=sys.stderr, flush=True)
    # uvicorn's own command line; with --workers 1 it serves in this process and exits.
    sys.exit(uvicorn_command.main(args=[str(c) for c in cmd[3:]], prog_name="uvicorn"))


mlflow.server._exec_cmd = _serve

if os.environ.get("RUNFERRY_TESTENV_SQLITE_SYNC") != "1":
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _said = []

    @event.listens_for(Engine, "connect")
    def _no_sync(dbapi_conn, _record):
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute("PRAGMA synchronous=OFF")
            if not _said:  # once: the level the store's first connection really has
                _said.append(dbapi_conn.execute("PRAGMA synchronous").fetchone()[0])
                print("testenv: SQLite synchronous=%d" % _said[0], file=sys.stderr, flush=True)

sys.exit(cli.main(args=sys.argv[1:], prog_name="mlflow"))
