"""Create traces on an MLflow server with MLflow's own tracing client.

Usage: python make_traces.py TRACKING_URI [PREFIX]

Writes the experiment "traces-src" with the run "agent-run", in which two
traces are logged (a decorated function with a child LLM span, and one
that fails with an exception: state ERROR), plus one trace logged in no
run, tagged color=blue; and the experiment "traces-only", which holds a
trace and no run. PREFIX, when given, starts both experiment names, so
that tests sharing a server keep apart. Prints a JSON object with the run
id and trace ids.
"""
import json
import sys

import mlflow

uri = sys.argv[1]
prefix = sys.argv[2] if len(sys.argv) > 2 else ""
mlflow.set_tracking_uri(uri)
exp = mlflow.set_experiment(prefix + "traces-src")


@mlflow.trace(name="agent", attributes={"team": "search"})
def agent(question):
    with mlflow.start_span(name="llm", span_type="LLM") as s:
        s.set_inputs({"prompt": question, "temperature": 0.25})
        s.set_outputs({"answer": question.upper(), "tokens": 7})
    return question.upper()


@mlflow.trace(name="broken")
def broken(x):
    raise ValueError(f"cannot handle {x}")


traces = []
with mlflow.start_run(run_name="agent-run") as run:
    mlflow.log_param("model", "tiny")
    agent("where is the ferry?")
    traces.append(mlflow.get_last_active_trace_id())
    try:
        broken(3)
    except ValueError:
        pass
    traces.append(mlflow.get_last_active_trace_id())
with mlflow.start_span(name="outside") as s:
    s.set_inputs("hello")
    s.set_attribute("score", 0.5)
traces.append(mlflow.get_last_active_trace_id())
mlflow.set_experiment(prefix + "traces-only")
with mlflow.start_span(name="lonely") as s:
    s.set_outputs([1, 2, 3])
traces.append(mlflow.get_last_active_trace_id())
if hasattr(mlflow, "flush_trace_async_logging"):
    mlflow.flush_trace_async_logging()
mlflow.set_trace_tag(traces[2], "color", "blue")
print(json.dumps({"run": run.info.run_id, "traces": traces}))
