// Package archive is the runferry Parquet archive format: its layout, the
// manifest and journal that make it checkable and crash-safe, the writer
// used by sinks/parquetdir, the reader used by sources/parquetdir, and the
// maintenance operations behind `runferry archive check|prune`.
//
// The format is specified in docs/ARCHIVE.md; this package is its only
// implementation. In short:
//
//   - every data file is immutable, written under .staging/, fsynced, and
//     renamed into its table folder (metrics/<runkey>/<name>.parquet, ...)
//     only after the run it belongs to is committed in the journal;
//   - journal/<snapshot>.jsonl records each committed run and experiment
//     (one checksummed JSON line, fsynced) and is folded into manifest.json,
//     written atomically, when the writer closes or the next one opens;
//   - manifest.json lists exactly the current files with their row counts,
//     sizes and SHA-256, so the table folders hold exactly the current data
//     and a plain read_parquet('ARCHIVE/metrics/*/*.parquet') sees every
//     point once; superseded files move to history/ and stay readable
//     through snapshots/<n>.json until Prune.
//
// All I/O goes through a Store (store.go): dirStore for a local folder,
// and object storage behind the same interface, so the protocol above is
// one code path whatever holds the files.
package archive
