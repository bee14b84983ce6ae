// Package mlflow is the source that reads an MLflow tracking server through
// its REST API (internal/mlflowapi).
//
// The same source reads MLflow's own stores without a server: a Backend
// (backend.go) answers in the REST API's terms, and NewWithBackend puts
// this source over it (sources/mlflowfile for mlruns/ folders), so that a
// run read from a store and through a server serving it is the same run.
//
// # Location
//
//	mlflow+http://HOST[:PORT][/PATH][?experiment-prefix=P&deleted=true]
//	mlflow+https://...
//
// Credentials and TLS as for the MLflow sink (MLflow's environment
// variables). experiment-prefix keeps only experiments whose name starts
// with P and removes P from their names (the inverse of the sink's option).
// deleted=true also reads deleted experiments and runs (default: active
// only).
//
// # What is read
//
//   - Experiments: experiments/search (ordered by id, paged, de-duplicated).
//     Origin is the runferry.origin tag when runferry wrote the experiment,
//     else mlflow:INSTANCE/<experiment_id>, INSTANCE naming the server
//     (mlflowconv.Instance: HOST[:PORT][/PATH], host in lower case, no
//     scheme, default port, trailing slash or credentials), so that the
//     experiments of two servers never share an origin; mlflow.note.content
//     is the description;
//     runferry.* and mlflow.runferry.* tags are bookkeeping and not exposed.
//   - Runs: runs/search ordered by start time (then run id), de-duplicated
//     across pages (MLflow's page tokens are offsets). Origin is the
//     runferry.origin tag when present, so chains such as W&B -> MLflow ->
//     Parquet keep the first origin; otherwise mlflow:INSTANCE/<run_id>
//     (experiment ids are not part of it). Runs a later
//     runferry copy superseded are skipped. Name, user (mlflow.user, else
//     user_id), status, start and end time, params; mlflow.note.content,
//     mlflow.source.git.commit, mlflow.source.git.repoURL and
//     mlflow.source.name become Notes, GitCommit, GitRemote and Program;
//     mlflow.parentRunId becomes Parent (mlflow:INSTANCE/<parent run id>);
//     wandb.group, wandb.job_type, wandb.host and wandb.tags (with the
//     wandb.tag.NAME tags of its names; versions before 11 wrote
//     runferry.group, ... runferry.labels) become Group, JobType, Host and
//     Labels; the other tags stay tags. Dataset inputs become Run.Inputs (name, digest,
//     source type, source, schema, profile and the input's tags such as
//     mlflow.data.context), read from MLflow for every run, runferry's too.
//   - MLflow 3 logged models of a run (logged-models/search by source run
//     id; none on older servers) are files of the run: each model's files
//     under mlflow-logged-models/<model id>/ and its metadata (name,
//     status, type, params, tags, metrics with their run and dataset; in
//     key order) as logged_model.json there. In a run runferry wrote, a
//     logged model it re-created is presented as the source's model it
//     stands for (mlflowconv.SourceModel; see sinks/mlflow).
//   - Runs runferry wrote are restored from runferry/run.json: origin,
//     name, labels, config, summary, group, job type, host, parent and
//     damage exactly as first read (that damage is Run.InheritedDamage:
//     carried, not a gap of this server); the run name, params and tags
//     are read from MLflow (they may have been edited): a rename or a tag
//     set or deleted is a change of the run, a param that disagrees with
//     the sidecar (MLflow lets no one change one) is noted in Run.Damage,
//     as is a runferry copy that never completed.
//   - Metrics: every key of the run (from runs/get) through get-history
//     (for runferry's runs under the W&B keys it renamed, the generated CPU
//     mean and converted system metrics left out and the folded per-core
//     CPU points and the converted series' W&B points read from
//     runferry/folded_metrics.jsonl: docs/MLFLOW-MAPPING.md),
//     always with max_results (servers 3.1 to about 3.13 return nothing
//     without it), paged. MLflow has no request for many keys of one run
//     (get-history-bulk takes many runs and one key), so HistoryWindow (8)
//     keys are read at once, yielded in key order. A key's history is held
//     in memory while it is sorted by step, time and value (MLflow returns
//     it in time order): up to HistoryWindow histories at a time. OnKeys
//     (sources.KeyReporter) is told the keys yielded of the run's keys.
//     Mapped keys and the fixups of runferry/coverage.json (±Inf, -0,
//     negative times, duplicates) are reversed, as are the steps of
//     metrics written against their W&B step metric (rebased); the points
//     the sink derived from summary values (summary_points) are left out.
//     The define_metric tags folded into wandb.step_metric come back from
//     the sidecar.
//   - Logs: runferry/logs.jsonl of runs runferry wrote, then, for a
//     console held in segments, runferry/logs.1.jsonl, ... as many as the
//     coverage file's log_segments name, in order. A run's own output.log
//     is a file to MLflow and is listed as one (by Artifacts).
//   - Rich values: runferry/rich_values.jsonl.
//   - Artifacts: artifacts/list, recursively, sorted by path, streamed
//     through the mlflow-artifacts proxy (or /get-artifact for runs stored
//     elsewhere). runferry/ and the files runferry generated (output.log and
//     its segments output.1.log, ..., config.json) are left out of runs runferry wrote; runferry/files/ is
//     listed under its original path. A source's own output.log that runferry
//     held in segments (the coverage file's output_segments) is listed once,
//     as output.log, its segments read one after the other (size their sum,
//     each segment's size checked against the coverage file).
//   - Traces (sources.TraceReader, MLflow 3): traces/search (v3) per
//     experiment, each trace's info, tags and request metadata, and its span
//     document from the route the MLflow UI reads (ajax-api
//     get-trace-artifact: the traces.json document whether the spans are in
//     the tracking store or the artifact store; else traces.json through the
//     proxy). Origin is runferry.origin when runferry wrote the trace, else
//     mlflow:INSTANCE/trace/<trace_id>; Run is runferry.source_run, else the
//     origin of the run mlflow.sourceRun names. The server's storage keys
//     (mlflow.artifactLocation, mlflow.trace.spansLocation,
//     mlflow.trace.infoFinalized) and runferry.* are not exposed. A server
//     without the v3 API has its traces counted by Omitted, not read.
//
// # Change detection
//
// Fingerprint (sources.Fingerprinter, for sync) digests what runs/search
// already returned for the run (status, end time, name, lifecycle stage,
// tags, params, latest_metrics: each key's latest value, step and
// timestamp, dataset inputs) and the run's artifact listing (paths and
// sizes). It reads no metric history and no file body; its cost is one
// listing request per artifact directory of each run, made while planning:
// a run's directories are listed concurrently (ListWindow in flight per
// source) and, for proxied runs, through the artifact proxy, which does not
// load the run from the tracking store as artifacts/list does (the
// fingerprint is the same as the walk's). MLflow records nothing on a run
// when a file is logged to it, so no cheaper signal could replace the
// listing (docs/BENCHMARKS.md "From an MLflow server": the server-bound
// floor of a no-change sync). A
// FINISHED run that gains a point, a tag, a param or a file is therefore
// copied again; a point logged below its key's latest step and time, a file rewritten with the
// same size and a change to a logged model's files are not seen (--force
// compares every run in full). The first sync after upgrading from a
// runferry without it writes every MLflow run once more.
//
// # Former origins
//
// Before origins named the server, runferry gave native experiments and
// runs the origins mlflow:<experiment_id> and mlflow:<run_id>. The source
// names them (sources.FormerOriginer) so that copies written under them are
// found in the ledger and the destination and replaced, never duplicated.
package mlflow
