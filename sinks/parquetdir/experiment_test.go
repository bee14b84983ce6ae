package parquetdir_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/parquetdir"
)

// treeBytes maps every file under root to its bytes.
func treeBytes(t *testing.T, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnchangedExperimentLeavesArchiveAlone puts an experiment into an
// archive, then again through a new sink: unchanged, it leaves every
// file of the archive byte-identical (no writer is opened: not even its
// recovery runs); changed, lost, or with an experiment under a former
// origin to retire, it is written as before.
func TestUnchangedExperimentLeavesArchiveAlone(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "archive")
	exp := schema.Experiment{Origin: schema.Ref{System: "wandb", ID: "team/proj"}, Name: "proj",
		Tags: []schema.Tag{{Key: "k", Value: "v"}}}
	put := func(e schema.Experiment, former ...schema.Ref) {
		t.Helper()
		s, err := parquetdir.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(former) > 0 {
			s.SetFormerOrigins(e.Origin, former)
		}
		if id, err := s.PutExperiment(ctx, e); err != nil || id != e.Origin.String() {
			t.Fatalf("PutExperiment: %q, %v", id, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	held := func() schema.Experiment {
		t.Helper()
		st, err := archive.LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !st.HoldsExperiment(exp.Origin.String()) {
			t.Fatalf("the archive does not hold %s", exp.Origin)
		}
		return exp
	}
	put(exp)
	held()
	// A file no manifest lists, in a table folder: opening a writer (its
	// recovery) would move it to history/.
	stray := filepath.Join(dir, archive.TableExperiments, "stray.parquet")
	if err := os.WriteFile(stray, []byte("stray"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := treeBytes(t, dir)
	put(exp)
	after := treeBytes(t, dir)
	if len(after) != len(before) {
		t.Fatalf("an unchanged experiment: %d files before, %d after", len(before), len(after))
	}
	for p, b := range before {
		if !bytes.Equal(after[p], b) {
			t.Errorf("an unchanged experiment changed %s", p)
		}
	}
	if err := os.Remove(stray); err != nil {
		t.Fatal(err)
	}
	st, _ := archive.LoadState(dir)
	store, err := archive.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if !st.ExperimentCurrent(store, exp) {
		t.Errorf("ExperimentCurrent: false for the experiment just put")
	}

	changed := exp
	changed.Description = "now described"
	if st.ExperimentCurrent(store, changed) {
		t.Errorf("ExperimentCurrent: true for a changed experiment")
	}
	put(changed)
	if st, _ = archive.LoadState(dir); !st.ExperimentCurrent(store, changed) {
		t.Errorf("the changed experiment was not written")
	}

	// Its files lost: written again.
	for _, f := range st.Manifest.Experiments[0].Files {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(f.Path))); err != nil {
			t.Fatal(err)
		}
	}
	if st.ExperimentCurrent(store, changed) {
		t.Errorf("ExperimentCurrent: true with the experiment's files gone")
	}
	put(changed)
	if st, _ = archive.LoadState(dir); !st.ExperimentCurrent(store, changed) {
		t.Errorf("the lost experiment was not written again")
	}

	// An experiment held under a former origin is retired even when the
	// experiment itself is unchanged.
	old := schema.Experiment{Origin: schema.Ref{System: "wandb", ID: "proj"}, Name: "proj"}
	put(old)
	put(changed, old.Origin)
	if st, _ = archive.LoadState(dir); st.HoldsExperiment(old.Origin.String()) {
		t.Errorf("the experiment under the former origin %s was not retired", old.Origin)
	}
}
