// Package parquetdir is the sink that writes runferry Parquet archives.
//
// Location syntax: parquet:PATH[?verify=size|sha256] (PATH is a local
// folder, created if missing; parquet:///abs/path also works), or
// parquet:s3://BUCKET/PREFIX[?region=..&endpoint=..&path-style=true&...]
// for an archive in S3 or an S3-compatible store (credentials from the AWS
// chain only; see docs/ARCHIVE.md, "Object storage"). Both go through
// archive.Store, so they behave alike. A write the store denies is fatal.
//
// Repair: before a run is skipped as unchanged, the sink confirms that its
// artifact bodies are still there with their recorded sizes (?verify=sha256
// also hashes them); a run with a missing or damaged body is written again,
// which stores its bodies anew.
//
// What it writes: long, tidy Parquet tables (experiments, runs, params,
// tags, metrics, rich_values, logs, artifacts, and the model registry's
// registered_models and model_versions) plus content-addressed artifact
// bodies, as specified in docs/ARCHIVE.md. Identity is the origin:
// every row carries the run's origin ("system:id") and the manifest maps
// each origin to its files, so copying the same source again adds nothing,
// and a run whose content changed replaces its earlier version whole. Each
// job that commits something adds one snapshot; earlier snapshots stay
// readable (parquet:PATH?snapshot=N as a source) until
// `runferry archive prune`.
//
// Crash safety: Commit makes a run durable (its files fsynced, then one
// fsynced journal line) before it returns, so the engine's ledger never
// claims a run the archive lacks; a crash at any other moment leaves every
// run as it was before its write began. Close publishes the snapshot.
//
// Examples:
//
//	runferry copy wandb:./wandb parquet:./archive
//	runferry sync mlflow+https://mlflow.example.com parquet:/backups/mlflow
//	runferry sync mlflow+https://mlflow.example.com 'parquet:s3://acme-backups/mlflow?region=eu-central-1'
package parquetdir
