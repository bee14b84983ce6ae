package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/location"
)

// Store is where an archive's files live: a local folder (dirStore) or a
// bucket prefix in object storage (blobStore). Every path is a slash path
// relative to the archive's root ("metrics/<key>/<file>.parquet"). The
// archive's protocol (docs/ARCHIVE.md) is written once against this
// interface, so the same code, and the same tests, run on both.
//
// Contracts:
//   - Open, ReadFile and Stat of a missing path fail with an error that
//     errors.Is fs.ErrNotExist.
//   - Create's writer makes nothing visible at its path until Commit
//     returns: a reader sees no file or the whole file, never a part;
//     Commit makes it durable.
//   - CreateExclusive writes data at p only if nothing is there, and
//     fails with fs.ErrExist otherwise, atomically (two callers never both
//     succeed). CreateExclusiveFrom does the same with the size bytes of
//     r, read in parts (never held whole: object storage uploads them in
//     parts, with the same condition on the whole object).
//   - WriteFileFrom is WriteFile with the size bytes of r, read in parts.
//   - Move makes from's content visible at to and removes from. A missing
//     from is not an error when to exists (the move happened before a
//     crash). A local folder renames; object storage copies and deletes,
//     so a crash may leave both (recovery removes the staged copy).
//   - Walk lists the files under a folder, in no particular order.
type Store interface {
	// Name returns how p is shown in messages: the local path, or the
	// object's URL without its query. It never holds credentials.
	Name(p string) string
	Open(p string) (ReadAtFile, error)
	ReadFile(p string) ([]byte, error)
	Stat(p string) (ObjectInfo, error)
	Create(p string) (ObjectWriter, error)
	// WriteFile is Create, Write and Commit.
	WriteFile(p string, data []byte) error
	CreateExclusive(p string, data []byte) error
	CreateExclusiveFrom(p string, r io.ReaderAt, size int64) error
	WriteFileFrom(p string, r io.ReaderAt, size int64) error
	Move(from, to string) error
	// Remove deletes p; a missing p is an fs.ErrNotExist error.
	Remove(p string) error
	// RemoveAll deletes everything under the folder dir.
	RemoveAll(dir string) error
	// Walk calls fn with the path and size of every file under dir; a
	// missing dir holds none.
	Walk(dir string, fn func(p string, size int64) error) error
	// Top lists the names at the archive's root (files and folders).
	Top() ([]string, error)
	// SyncDir makes the entries of folder dir durable (a local fsync; a
	// no-op for object storage, whose writes are durable when they return).
	SyncDir(dir string) error

	// The journal of snapshot jn is a sequence of records (one JSON line
	// each). ReadJournal returns the records from position from on, each
	// with the position after it; AppendJournal writes line at position
	// at (cutting off whatever a crashed writer left past it) and returns
	// the position after it. Positions are opaque: bytes in a local
	// journal file, record numbers in object storage, where each record
	// is its own object created exclusively.
	ReadJournal(jn, from int64) ([]JournalChunk, error)
	AppendJournal(jn, at int64, line []byte) (int64, error)
	// Journals lists the snapshot numbers that have a journal, and
	// RemoveJournal deletes one.
	Journals() ([]int64, error)
	RemoveJournal(jn int64) error

	// Lock opens the lock called name (".lock", ".commit.lock").
	Lock(name string) (StoreLock, error)
	// SpillDir is a local folder for the metrics sorter's spill files.
	SpillDir() string
	// Close releases what the store holds (not its locks' owners).
	Close() error
}

// ReadAtFile is an open file: read whole, or in ranges (Parquet readers
// read the footer first, then the pages they need).
type ReadAtFile interface {
	io.ReadCloser
	io.ReaderAt
	Size() int64
}

// ObjectWriter writes one file; see Store.Create.
type ObjectWriter interface {
	io.Writer
	// Commit makes the file visible and durable at its path.
	Commit() error
	// Abort abandons it; nothing appears at its path.
	Abort()
}

// ObjectInfo describes a stored file. Version tells two versions of a
// file at one path apart (a local file's identity and time, an object's
// ETag and time).
type ObjectInfo struct {
	Size    int64
	ModTime time.Time
	Version string
}

// JournalChunk is one journal record as stored and the position after it.
type JournalChunk struct {
	Line string
	End  int64
}

// StoreLock is a lock shared by the writers of one archive. A local folder
// uses flock(2), released by the kernel when a process dies; object
// storage uses lock objects created exclusively and renewed while held,
// which others may break once they expire (LockTTL).
type StoreLock interface {
	// Take takes the lock shared or exclusive, waiting for it or failing
	// at once with an error. Taking the other kind while holding one
	// converts the lock (not atomically).
	Take(exclusive, wait bool) error
	// Drop releases it.
	Drop() error
	// Close releases it and frees the lock.
	Close() error
}

// ErrDenied marks an operation the object store refused for lack of
// permission (a changed bucket policy, a read-only key): no later write
// of the job can succeed either.
var ErrDenied = errors.New("access denied")

// errNotLocked is what Take returns without waiting when the lock is held.
var errNotLocked = errors.New("the lock is held by another writer")

// OpenStore returns the store of the archive at location: a local folder
// path, or an object-storage URL (s3://BUCKET/PREFIX?region=...,
// gs://BUCKET/PREFIX, azblob://CONTAINER/PREFIX; see openBlobStore).
func OpenStore(location string) (Store, error) {
	if scheme, _, ok := strings.Cut(location, "://"); ok && isBlobScheme(scheme) {
		return openBlobStore(location)
	}
	return newDirStore(location), nil
}

// IsObjectStorage reports whether location names an archive in object
// storage rather than a local folder.
func IsObjectStorage(location string) bool {
	scheme, _, ok := strings.Cut(location, "://")
	return ok && isBlobScheme(scheme)
}

func isBlobScheme(s string) bool {
	switch s {
	case "s3", "gs", "azblob":
		return true
	}
	return false
}

// notExist reports whether err says a file is missing.
func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// isLockName reports whether a name at an archive's root belongs to its
// locks (.lock and .commit.lock, and in object storage the lock objects
// beside them).
func isLockName(name string) bool {
	return strings.HasPrefix(name, lockFile) || strings.HasPrefix(name, commitLockFile)
}

// StoreLocation returns the location OpenStore takes for an archive at
// path (a local path or an object-storage URL without query) with the
// location options q: those of StoreOptions go with an object-storage URL;
// given with a local path they are an error. Other options are ignored
// (they belong to the adapter).
func StoreLocation(path string, q url.Values) (string, error) {
	opts := url.Values{}
	for _, k := range StoreOptions {
		if v, ok := q[k]; ok {
			opts[k] = v
		}
	}
	if !IsObjectStorage(path) {
		for k := range opts {
			return "", fmt.Errorf("option %s applies to archives in object storage (s3://...), not to the local folder %s", k, path)
		}
		return path, nil
	}
	if len(opts) == 0 {
		return path, nil
	}
	return path + "?" + queryAsTyped(opts), nil
}

// queryAsTyped encodes q as url.Values.Encode does (keys sorted), but
// escapes in its keys and values only what would change how the query
// parses back ('%', '&', '#', '+', ';', spaces and control characters),
// so that a location shown in a message reads as the user typed it
// (endpoint=http://127.0.0.1:9000, not endpoint=http%3A%2F%2F127.0.0.1%3A9000).
func queryAsTyped(q url.Values) string {
	esc := func(s, special string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			if c <= ' ' || c >= 0x7f || strings.IndexByte(special, c) >= 0 {
				fmt.Fprintf(&b, "%%%02X", c)
			} else {
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[k] {
			parts = append(parts, esc(k, "%&#+;=")+"="+esc(v, "%&#+;"))
		}
	}
	return strings.Join(parts, "&")
}

// StoreSecretEnvVars are the object stores' secret environment variables,
// which the clouds' own credential chains read (S3: the secret key and
// session token; Azure: the account key, SAS token, connection string and
// a service principal's secret). runferry never takes them from a location;
// the adapters declare them secret so that their values are scrubbed from
// all output, reports and state, and refused in a location's query.
var StoreSecretEnvVars = []string{
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET",
}

// LocationOptions are the options of an archive location that names
// object storage, as the parquet sink and source declare them: each of
// StoreOptions with its help and environment variable, then each of
// StoreSecretEnvVars as a secret option (never taken from a location,
// scrubbed from all output).
func LocationOptions() []location.Option {
	out := make([]location.Option, len(StoreOptions))
	for i, name := range StoreOptions {
		out[i] = location.Option{Name: name, Help: StoreOptionHelp[name], EnvVar: StoreOptionEnv[name]}
	}
	for _, env := range StoreSecretEnvVars {
		out = append(out, location.Option{Name: strings.ReplaceAll(strings.ToLower(env), "_", "-"), EnvVar: env, Secret: true,
			Help: "Object storage: read by the cloud's own credential chain from " + env + " only; never printed."})
	}
	return out
}

// StoreOptionHelp describes each of StoreOptions, for the adapters'
// descriptions.
var StoreOptionHelp = map[string]string{
	"region":        "Object storage: the bucket's region (default: from AWS_REGION or the shared config, else us-east-1).",
	"endpoint":      "Object storage: for s3://, the endpoint URL of an S3-compatible store (MinIO, Ceph, R2, Wasabi, ...; default: AWS); for gs://, another endpoint of the GCS JSON API (https://, with the same credentials) or an emulator (http://HOST:PORT, sent no credentials; default: STORAGE_EMULATOR_HOST, else Google).",
	"path-style":    "Object storage: true addresses the bucket in the URL path (most S3-compatible stores need it) instead of the host name.",
	"sse":           "Object storage: server-side encryption of every object written: AES256, aws:kms or aws:kms:dsse.",
	"kms-key-id":    "Object storage: the KMS key for sse=aws:kms (implies it).",
	"storage-class": "Object storage: the storage class of every object written (STANDARD, STANDARD_IA, GLACIER_IR, ...).",
	"profile":       "Object storage: the AWS shared-config profile whose credentials and settings to use (default: AWS_PROFILE, else default).",
	"object-lock": "Object storage (S3): MODE:PERIOD, e.g. governance:30d or compliance:1y: every data file, artifact body and snapshot " +
		"manifest is written with S3 Object Lock retention in MODE for PERIOD (days d, years y, or 12h); the bucket must have Object Lock enabled. " +
		"archive prune keeps (and lists) what is still retained.",
	"metadata": "Object storage: false never asks a cloud's instance metadata service for credentials (AWS's EC2 instance role, Google's metadata server, " +
		"an Azure managed identity; default: RUNFERRY_METADATA, else true): only the environment and local credential files are used, and none found is an error naming what was not asked.",
}
