// Package mlflowsql is the source that reads MLflow's own SQL tracking
// store (SQLite, PostgreSQL, MySQL/MariaDB) directly, without a tracking
// server, and yields exactly what the REST source (sources/mlflow) yields
// for the same runs through a server serving that store.
//
// # Location
//
//	mlflow+sqlite:PATH
//	mlflow+postgresql://USER@HOST[:PORT]/DATABASE   (alias mlflow+postgres://)
//	mlflow+mysql://USER@HOST[:PORT]/DATABASE
//
// with the options instance=HOST[:PORT][/PATH], artifacts=DIR,
// experiment-prefix=P and deleted=true|false, and the connection options
// of the sqldb locations. Connections, and the rule that a password comes
// only from PGPASSWORD or MYSQL_PWD and is never shown, are
// internal/sqlstore's; a SQLite file is opened read-only.
//
// # Revisions
//
// The store's alembic revision (alembic_version) is read first and must be
// one of the revisions MLflow 3.17.2 ships (revisions.go, oldest first,
// from 451aebb31d03 of MLflow 1.x); any other is refused with one line
// naming it: a newer MLflow may have moved anything, and the source never
// guesses. Each query names only columns and tables that exist at the
// store's revision: metrics.is_nan from 181f10493468 (before it a NaN
// cannot be stored), experiment_tags from df50e92ffc5e, experiments'
// creation_time from 97727af70f4d, datasets/inputs/input_tags from
// 7f2a7d5fae7d, logged_models from 400f98739977, the registry from
// 2b4d017a5e9b (its tags from 728d730b5ebd and 27a6a02d2cf1, aliases from
// 3500859a5d39), traces from 867495a8f9d4 (their v3 columns from
// cbc13b556ace, assessments from 770bee3ae1dd, spans from a1b2c3d4e5f6,
// the analytics columns from 75868b020152).
//
// # What is read, and how it matches the REST source
//
// The source is the MLflow source (sources/mlflow) over a backend that
// reads the database instead of a server (mlflow.NewWithBackend), as
// sources/mlflowfile is for mlruns/ folders: rows are assembled into
// internal/mlflowapi's wire types, what the server would send, and every
// mapping (origins, fields and tags, runferry's own sidecars, the
// registry, traces) is the MLflow source's, so a run reads the same here
// as through a server serving the store.
//
//   - Origins: mlflow:INSTANCE/<id>, as the REST source gives them; with
//     the instance option INSTANCE is the tracking server's
//     (mlflowconv.Instance), so a run read here and one read through
//     mlflow+http://INSTANCE are the same run (check compares them);
//     without it, the database: "sqlite:/ABS/PATH" or
//     "postgresql://HOST[:PORT]/DB". Runs runferry wrote keep the origin
//     they were copied from.
//   - Experiments ordered by id; runs by start time and id, each with its
//     params, tags, latest_metrics (before that table, the greatest point
//     of each key's history) and dataset inputs (one per dataset with the
//     tags of its inputs, as MLflow's SQL store assembles them). Deleted
//     ones (lifecycle_stage deleted) only with deleted=true.
//   - Metric histories: one query per key, NaN where is_nan is set,
//     infinities as the ±1.7976931348623157e308 MLflow stored (its server
//     returns the same). An error (a dropped connection) names the run and
//     the key.
//   - Files: from the run's artifact_uri when it is a folder here: an
//     absolute path, a file: URI, or mlflow-artifacts:/... under the
//     artifacts option (the server's --artifacts-destination). A missing
//     folder holds no files (MLflow makes it with the first file, and its
//     server lists none either); a location that cannot be read here
//     (object storage, a Windows path, mlflow-artifacts: without the
//     option) is counted by Omitted with the reason.
//   - Runs runferry wrote into MLflow are restored from the sidecar files
//     runferry stored with them, exactly as the MLflow source restores
//     them through a server (with a damage note for each way MLflow's
//     copy was edited since). When the run's files cannot be read here,
//     the run is read as MLflow holds it and its Damage says why and what
//     to give (?artifacts=, or a tracking server).
//   - MLflow 3 logged models (logged_models, from 400f98739977): their
//     files under the artifacts option for mlflow-artifacts: locations,
//     which the server's proxy serves; any other location is the MLflow
//     source's mlflowapi.ErrNotProxied Problem.
//   - The model registry: registered models with tags and aliases,
//     versions with tags (deleted versions, stage Deleted_Internal, left
//     out as the server leaves them out).
//   - Traces: trace_info with its tags and request metadata, as the
//     server's trace search returns them (trace_name, session_id and the
//     token and cost columns shown as the tag and metadata the server
//     makes of them), with the span document the server's trace-data
//     route gives: the spans table's rows for a trace whose spans are in
//     the tracking store, else traces.json under its artifact location
//     (one that cannot be read here: the trace without spans, counted by
//     Omitted).
package mlflowsql
