package parquetdir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"sync/atomic"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// PageSize is the number of points, lines or values in one yielded page.
const PageSize = 10_000

// Description describes the adapter for the registry.
func Description() location.Description {
	return location.Description{
		Scheme:  "parquet",
		Kind:    location.StoreKind,
		Syntax:  "parquet:PATH | parquet:s3://BUCKET/PREFIX | parquet:gs://BUCKET/PREFIX | parquet:azblob://CONTAINER/PREFIX [?snapshot=N]",
		Summary: "runferry Parquet archive, read back with every original origin",
		Help: "Reads the archive's current state, or snapshot N with ?snapshot=N, verifying every file " +
			"against the manifest's SHA-256. Runs keep the origin they were archived from. Format: docs/ARCHIVE.md.",
		Options: append([]location.Option{{Name: "snapshot", Default: "0",
			Help: "Snapshot to read. 0 reads the current state; N reads the archive as it was after snapshot N."}}, archive.LocationOptions()...),
		Example: "runferry check mlflow+https://mlflow.example.com parquet:/backups/mlflow",
	}
}

// Open opens the source at loc (the sources.Factory Open function).
func Open(_ context.Context, loc location.Location) (sources.Source, error) {
	var snap int64
	if v := loc.Query("snapshot"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fault.Fatal(fmt.Errorf("option snapshot=%q: want a snapshot number", v))
		}
		snap = n
	}
	path, err := archive.StoreLocation(loc.Path, loc.URL.Query())
	if err != nil {
		return nil, fault.Fatal(err)
	}
	return New(path, snap)
}

// Factory returns the registry entry of the source.
func Factory() sources.Factory { return sources.Factory{Description: Description(), Open: Open} }

// Source reads one archive state, fixed when it was opened.
type Source struct {
	r      *archive.Reader
	closed atomic.Bool
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.ManifestLister  = (*Source)(nil)
	_ sources.LogReader       = (*Source)(nil)
	_ sources.RichValueReader = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.Fingerprinter   = (*Source)(nil)
)

// New opens the archive at path; snapshot 0 reads the current state.
func New(path string, snapshot int64) (*Source, error) {
	r, err := archive.OpenReader(path, snapshot)
	if err != nil {
		return nil, fault.Fatal(err)
	}
	return &Source{r: r}, nil
}

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("parquet source: closed")

// Check reports whether the source is open; the manifest was verified at
// open.
func (s *Source) Check(context.Context) error {
	if s.closed.Load() {
		return fault.Fatal(ErrClosed)
	}
	return nil
}

// classify marks damage as permanent for the run; other errors (I/O) stay
// retryable.
func classify(err error) error {
	if errors.Is(err, archive.ErrDamaged) {
		return fault.Permanent(err)
	}
	return err
}

// Experiments yields the archived experiments sorted by origin.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		if err := s.Check(ctx); err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		exps, err := s.r.Experiments()
		if err != nil {
			yield(schema.Experiment{}, fault.Fatal(err))
			return
		}
		for _, e := range exps {
			if ctx.Err() != nil {
				yield(schema.Experiment{}, ctx.Err())
				return
			}
			e.Canonicalize()
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Runs yields the runs of exp sorted by origin.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return s.runs(ctx, exp, nil)
}

// runs yields the runs of exp that keep selects (all when nil), reading
// only those.
func (s *Source) runs(ctx context.Context, exp schema.Ref, keep func(archive.RunEntry) bool) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		if err := s.Check(ctx); err != nil {
			yield(schema.Run{}, err)
			return
		}
		for _, e := range s.r.Runs(exp.String()) {
			if keep != nil && !keep(e) {
				continue
			}
			if ctx.Err() != nil {
				yield(schema.Run{}, ctx.Err())
				return
			}
			r, err := s.r.ReadRun(e)
			if err != nil {
				yield(schema.Run{}, classify(err))
				return
			}
			r.Canonicalize()
			if !yield(r, nil) {
				return
			}
		}
	}
}

var (
	_ sources.TransformReader = (*Source)(nil)
	_ sources.Sizer           = (*Source)(nil)
)

// Size returns the run's points and file bytes from the manifest.
func (s *Source) Size(_ context.Context, r schema.Run) (points, bytes int64, ok bool) {
	e, ok := s.r.Run(r.Origin.String())
	if !ok {
		return 0, 0, false
	}
	for _, b := range e.Blobs {
		bytes += b.Bytes
	}
	return e.Points, bytes, true
}

// RecordedTransform returns the transform the run was archived through,
// from its recorded fingerprint.
func (s *Source) RecordedTransform(_ context.Context, run schema.Ref) string {
	e, ok := s.r.Run(run.String())
	if !ok {
		return ""
	}
	return transform.Recorded(e.Fingerprint)
}

// Fingerprint returns the fingerprint the run was archived with, so that
// a sync from the archive into another archive skips unchanged runs. A
// RUNNING run's fingerprint also covers its current files (their SHA-256s
// from the manifest, and its blobs): its source may give the same
// fingerprint, or none, while it grows, but every write of it into this
// archive (an append, a rewrite, new tags or status) changes one of its
// files, so a run that did not change here is found unchanged and one
// that did is read again.
func (s *Source) Fingerprint(_ context.Context, r schema.Run) (string, error) {
	e, ok := s.r.Run(r.Origin.String())
	if !ok {
		return "", nil
	}
	if r.Status != schema.StatusRunning {
		return e.Fingerprint, nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", e.Mark, e.Fingerprint)
	for _, f := range e.Files {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00", f.Table, f.SHA256, f.Rows)
	}
	for _, b := range e.Blobs {
		fmt.Fprintf(h, "%s\x00", b.SHA256)
	}
	return "archive-files=" + hex.EncodeToString(h.Sum(nil)) + ";" + e.Fingerprint, nil
}

func (s *Source) entry(run schema.Ref) (archive.RunEntry, error) {
	if err := s.Check(context.Background()); err != nil {
		return archive.RunEntry{}, err
	}
	e, ok := s.r.Run(run.String())
	if !ok {
		return e, fault.Permanent(fmt.Errorf("parquet source: run %s not found", run))
	}
	return e, nil
}

// pages adapts a callback reader to an iterator.
func pages[T any](ctx context.Context, s *Source, run schema.Ref, read func(archive.RunEntry, int, func([]T) error) error) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		e, err := s.entry(run)
		if err != nil {
			yield(nil, err)
			return
		}
		err = sources.ReadPages(ctx, yield, func(each func([]T) error) error {
			return read(e, PageSize, each)
		})
		if err != nil {
			yield(nil, classify(err))
		}
	}
}

// Metrics yields the run's points sorted by key, then step.
func (s *Source) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return pages(ctx, s, run, s.r.Metrics)
}

// RichValues yields the run's non-numeric values in the order archived.
func (s *Source) RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	return pages(ctx, s, run, s.r.RichValues)
}

// Logs yields the run's console lines in the order archived.
func (s *Source) Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return pages(ctx, s, run, s.r.Logs)
}

// Artifacts yields the run's files sorted by path, with the size and
// SHA-256 the archive recorded; Open streams the body and verifies it: a
// missing body, or one whose size or SHA-256 differ from the record, is a
// permanent error naming the file (see archive.Reader.OpenBlob).
func (s *Source) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		e, err := s.entry(run)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		rows, err := s.r.Artifacts(e)
		if err != nil {
			yield(schema.Artifact{}, classify(err))
			return
		}
		for _, row := range rows {
			if ctx.Err() != nil {
				yield(schema.Artifact{}, ctx.Err())
				return
			}
			if !yield(s.artifact(row), nil) {
				return
			}
		}
	}
}

// Manifests yields the W&B Artifacts versions the run logged, then those
// it used, from the archive's artifact_versions and artifact_entries
// tables (none for runs archived before those tables existed).
func (s *Source) Manifests(ctx context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error] {
	return func(yield func(schema.ArtifactManifest, error) bool) {
		e, err := s.entry(run)
		if err != nil {
			yield(schema.ArtifactManifest{}, err)
			return
		}
		ms, err := s.r.ArtifactManifests(e)
		if err != nil {
			yield(schema.ArtifactManifest{}, classify(err))
			return
		}
		for _, m := range ms {
			if ctx.Err() != nil {
				yield(schema.ArtifactManifest{}, ctx.Err())
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

func (s *Source) artifact(row archive.ArtifactRow) schema.Artifact {
	// A problem row is what the copy that wrote the archive recorded of
	// its source: inherited (the archive's own damage is a read error).
	a := schema.Artifact{Path: row.Path, Size: -1, Problem: row.Problem, Inherited: row.Problem != ""}
	if row.SHA256 == nil || row.Size == nil {
		return a
	}
	sha, size := *row.SHA256, *row.Size
	a.Size, a.Digest = size, "sha256:"+sha
	a.Open = func(context.Context) (io.ReadCloser, error) {
		rc, err := s.r.OpenBlob(sha, size)
		if err != nil {
			return nil, classify(err)
		}
		return classifiedReader{rc}, nil
	}
	return a
}

// classifiedReader marks a damaged body found while reading as a permanent
// error of the run (see classify); io.EOF passes unchanged.
type classifiedReader struct{ io.ReadCloser }

func (c classifiedReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = classify(err)
	}
	return n, err
}

// Close makes every later call fail with ErrClosed.
func (s *Source) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.r.Close()
}
