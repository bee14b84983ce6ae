package sqldb_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"iter"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// digestSource is the memory source announcing each file's size and
// SHA-256, as the archive and database sources do.
type digestSource struct {
	*memsrc.Source
	d *dataset.Dataset
}

func (s digestSource) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		for a, err := range s.Source.Artifacts(ctx, run) {
			if err == nil && a.Problem == "" {
				for _, rd := range s.d.Runs {
					if rd.Run.Origin != run {
						continue
					}
					for _, f := range rd.Files {
						if f.Path == a.Path {
							sum := sha256.Sum256(f.Content)
							a.Size, a.Digest = int64(len(f.Content)), "sha256:"+hex.EncodeToString(sum[:])
						}
					}
				}
			}
			if !yield(a, err) {
				return
			}
		}
	}
}

// noDigestSource is the memory source announcing each file's size but
// no digest, as the MLflow source does.
type noDigestSource struct{ *memsrc.Source }

func (s noDigestSource) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		for a, err := range s.Source.Artifacts(ctx, run) {
			a.Digest = ""
			if !yield(a, err) {
				return
			}
		}
	}
}

// TestAppendKeepsUnchangedFiles: appending to a run whose source
// announces each file's size and SHA-256, or its size alone (the bodies
// are then hashed through a temporary file), the files the database holds
// unchanged are kept, not stored again (the report counts them kept), the
// new ones are stored, and the run reads back as a fresh copy would.
func TestAppendKeepsUnchangedFiles(t *testing.T) {
	t.Run("digest", func(t *testing.T) {
		appendKeepsUnchangedFiles(t, func(d *dataset.Dataset) sources.Source { return digestSource{memsrc.New(d), d} })
	})
	t.Run("size only", func(t *testing.T) {
		appendKeepsUnchangedFiles(t, func(d *dataset.Dataset) sources.Source { return noDigestSource{memsrc.New(d)} })
	})
}

func appendKeepsUnchangedFiles(t *testing.T, source func(*dataset.Dataset) sources.Source) {
	early, grown := sinktest.Grown()
	loc := "sqlite:" + filepath.Join(t.TempDir(), "runs.db")
	l := &sinktest.MemLedger{}
	ctx := context.Background()
	for i, d := range []*dataset.Dataset{early, grown} {
		dst := openSink(t, loc)
		rep, err := transfer.Copy(ctx, source(d), dst, transfer.Options{Ledger: l, Attempts: 1})
		dst.Close()
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("copy %d: %v %+v", i, err, rep.Totals)
		}
		if i == 0 {
			continue
		}
		big := grown.Runs[0]
		found := false
		for _, r := range rep.Runs {
			if r.Origin != big.Run.Origin.String() {
				continue
			}
			found = true
			// sinktest.Grown: of the early run's files two are given again
			// unchanged, one changed (config.yaml), one is gone; the grown
			// run adds one.
			if !r.Appended || r.KeptFiles != 2 || r.Files != int64(len(big.Files))-2 || r.DeletedFiles != 1 {
				t.Errorf("appended %v, %d files kept, %d sent, %d deleted; want appended, 2 kept, %d sent, 1 deleted", r.Appended, r.KeptFiles, r.Files, r.DeletedFiles, int64(len(big.Files))-2)
			}
		}
		if !found {
			t.Fatalf("the second copy did not report run %s: %+v", big.Run.Origin, rep.Runs)
		}
	}
	src := openSource(t, loc)
	defer src.Close()
	got, err := dataset.Read(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if diffs := dataset.Diff(grown, got, dataset.DiffOptions{}); len(diffs) > 0 {
		t.Errorf("after the append the database differs from the grown dataset:\n%v", diffs)
	}
}
