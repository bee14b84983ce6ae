// Package parquetdir is the source that reads runferry Parquet archives
// (docs/ARCHIVE.md) back into the common schema.
//
// Location syntax: parquet:PATH[?snapshot=N], or
// parquet:s3://BUCKET/PREFIX[?snapshot=N&region=..&endpoint=..] (or
// gs://BUCKET/PREFIX, azblob://CONTAINER/PREFIX) for an archive in object
// storage (only the files of the runs read are fetched).
// Without snapshot it reads
// the current state (including runs committed by a writer that has not
// published yet); with snapshot=N it reads the archive as it was after
// snapshot N, until that snapshot is pruned.
//
// Every experiment and run is yielded with the Origin it was archived
// from, so `runferry check SRC parquet:PATH` matches runs by origin. An
// archive originates nothing: those origins already name the instance
// they came from (an MLflow server, a W&B entity or folder), so a copy of
// an archive, or a restore from it, holds the same runs under the same
// origins, wherever the archive lies. Every
// data file is verified against the manifest's size and SHA-256 before it
// is used; a damaged file fails the run with an error naming the file.
//
// The archive's model registry (format version 3) is read as archived
// (sources.RegistryReader): each version names its source run by the
// origin the archive holds it under, so a restore points the version at
// the run it wrote from that origin. Older archives hold no registry.
//
// Example:
//
//	runferry copy parquet:/backups/mlflow mlflow+http://127.0.0.1:5000
package parquetdir
