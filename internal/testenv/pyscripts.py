"""Run Python scripts one after another in one Python process (testenv.StartPyScripts
embeds this file; Python only for tests).

Usage: python pyscripts.py   (requests on standard input, one a line; it ends at their end)

Each request is a JSON array: a script's path and its arguments. The script
runs as `python SCRIPT ARGS...` would run it (runpy, as __main__, with that
sys.argv), its standard output captured; the answer is one JSON line on
standard output: {"out": what it printed} or {"error": why it failed, "out":
what it printed before}. Standard error passes through. A test that runs
several scripts (MLflow's client reading a server after each copy) imports
MLflow once, not once a script: about 6 s of CPU each. Every script
makes its own client from its arguments; nothing of one request is read by
the next.
"""
import contextlib
import io
import json
import runpy
import sys
import traceback

answers = sys.stdout
for line in sys.stdin:
    if not line.strip():
        continue
    argv = json.loads(line)
    buf = io.StringIO()
    answer = {}
    try:
        sys.argv = list(argv)
        with contextlib.redirect_stdout(buf):
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            answer["error"] = "exit %s" % (e.code,)
    except BaseException:
        answer["error"] = traceback.format_exc()
    answer["out"] = buf.getvalue()
    answers.write(json.dumps(answer) + "\n")
    answers.flush()
