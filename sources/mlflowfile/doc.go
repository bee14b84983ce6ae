// Package mlflowfile is the source that reads an MLflow file store (an
// mlruns/ folder) directly, without a tracking server.
//
// # Location
//
//	mlflow+file:PATH[?instance=HOST:PORT&artifacts-destination=DIR&artifact-fallback=false&deleted=true&experiment-prefix=P]
//
// # Same runs as through a server
//
// The source is the MLflow source (sources/mlflow) over a Backend that
// reads the folder and answers in the REST API's terms, as a server
// serving the folder would (MLflow's FileStore, mlflow/store/tracking/
// file_store.py and model_registry/file_store.py, read for its layout):
// experiments ordered by id, runs by start time then id, a run's latest
// metric per key the greatest by (step, time, value), histories in file
// order with duplicated lines kept, dataset inputs, logged models with
// each metric's latest point per dataset, the registry, traces. Every
// mapping onto the schema (origins, fields, tags, runferry's sidecars in
// runs runferry wrote into MLflow) is therefore the MLflow source's.
// Origins are mlflow:INSTANCE/ID with INSTANCE "file" + the store's
// absolute path, or the instance option: the HOST:PORT[/PATH] of the
// server that serves the store, so that runs read here and through it are
// the same runs (sync and check then treat them as one).
//
// # Every era
//
//   - Experiments: meta.yaml with ids as integers (1.x) or strings; tags
//     under tags/ (keys with '/' nested). A folder without meta.yaml, or
//     whose meta.yaml names another id, is skipped as MLflow skips it, and
//     counted by Omitted. Deleted experiments live in .trash/ and are read
//     with deleted=true.
//   - Runs: meta.yaml (status as MLflow's integer enum, missing = RUNNING;
//     end_time null for unfinished runs; the name from run_name, else the
//     mlflow.runName tag as in MLflow before 1.29), params/, tags/,
//     metrics/. A deleted run stays in place with lifecycle_stage deleted.
//   - Metric lines: "ts value" (step 0), "ts value step", "ts value step
//     dataset digest" (MLflow's reader takes step 0 there; here the third
//     field is the step), with a dataset name holding spaces tolerated
//     (MLflow writes it, its reader refuses it); in a logged model's
//     files "ts value step run [dataset digest]". Values are Python float
//     text (nan, inf, -inf).
//   - Inputs: inputs/<id>/meta.yaml of type DATASET name a folder of the
//     experiment's datasets/; outputs/ link MLflow 3 logged models, read
//     from <experiment>/models/<id>/ (meta.yaml, params/, tags/, metrics/).
//   - Registry: models/<name>/ at the store's root (meta.yaml, tags/,
//     aliases/, version-<n>/); versions in stage Deleted_Internal are gone.
//   - Traces: <experiment>/traces/<id>/trace_info.yaml (MLflow 2 and 3
//     fields), tags/, request_metadata/, and traces.json under the trace's
//     artifact location.
//
// # Artifacts
//
// An artifact root is read where its URI points: file:///abs (with
// %-escapes such as %20, or raw spaces as MLflow 3 writes them), a bare
// path (1.x), a path relative to the folder beside the store,
// mlflow-artifacts:/PATH below artifacts-destination (default: mlartifacts
// beside the store). A URI that does not resolve here (a Windows path
// C:\... or file:///C:/..., a store moved from elsewhere) is looked up next
// to the store (<run>/artifacts, <model>/artifacts) unless
// artifact-fallback=false, which reads only what a server serving the
// store would show. A run whose files are nowhere carries that in its
// Damage when its tags say it logged files (mlflow.log-model.history,
// mlflow.loggedImages, mlflow.loggedArtifacts; git drops the empty
// artifacts/ folder of a run that logged none), and is counted by Omitted;
// a logged model's files that are nowhere are listed as one file with a
// Problem, as the MLflow source does for files a server does not serve.
// Remote roots (s3://, gs://, ...) are not read.
//
// # Damage
//
// A meta.yaml that does not parse is an error naming the file and line
// (yielded after every readable run or experiment of the listing); a
// metric line that does not parse ends that key's history with an error
// naming the file and line, after the points before it. Both are
// permanent: another try will not mend them.
package mlflowfile
