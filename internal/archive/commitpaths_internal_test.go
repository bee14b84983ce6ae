package archive

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/schema"
)

// recordingStore is a Store that records every path it is asked about
// (stat, open, read, walk, move, remove, fsync), for tests of what a
// writer touches.
type recordingStore struct {
	Store
	mu  sync.Mutex
	ops []string // "op path"
}

func (s *recordingStore) rec(op string, paths ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		s.ops = append(s.ops, op+" "+p)
	}
}

func (s *recordingStore) Open(p string) (ReadAtFile, error) { s.rec("open", p); return s.Store.Open(p) }
func (s *recordingStore) ReadFile(p string) ([]byte, error) {
	s.rec("read", p)
	return s.Store.ReadFile(p)
}
func (s *recordingStore) Stat(p string) (ObjectInfo, error) { s.rec("stat", p); return s.Store.Stat(p) }
func (s *recordingStore) Move(from, to string) error {
	s.rec("move", from, to)
	return s.Store.Move(from, to)
}
func (s *recordingStore) Remove(p string) error { s.rec("remove", p); return s.Store.Remove(p) }
func (s *recordingStore) RemoveAll(p string) error {
	s.rec("removeall", p)
	return s.Store.RemoveAll(p)
}
func (s *recordingStore) SyncDir(p string) error { s.rec("syncdir", p); return s.Store.SyncDir(p) }
func (s *recordingStore) Walk(dir string, fn func(p string, size int64) error) error {
	s.rec("walk", dir)
	return s.Store.Walk(dir, fn)
}

// commitTestRun is run i of the commit tests: n steps of one key.
func commitTestRun(i int) schema.Run {
	return schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("run-%02d", i)},
		Experiment: schema.Ref{System: "memory", ID: "exp"}, Name: fmt.Sprint("run ", i), Status: schema.StatusFinished}
}

func writeCommitTestRun(t *testing.T, w *Writer, i int, from, to int, prev *RunEntry) {
	t.Helper()
	r := commitTestRun(i)
	var rw *RunWriter
	if prev != nil {
		var err error
		if rw, err = w.AppendRun(r, *prev); err != nil {
			t.Fatal(err)
		}
	} else {
		rw = w.OpenRun(r)
	}
	var batch []schema.Metric
	for s := from; s < to; s++ {
		batch = append(batch, schema.Metric{Key: "loss", Step: int64(s), Time: 1e12 + int64(s), Value: float64(i*1000 + s)})
	}
	if err := rw.WriteMetrics(batch); err != nil {
		t.Fatal(err)
	}
	if err := rw.Commit(); err != nil {
		t.Fatal(err)
	}
}

// newCommitTestArchive writes an archive of runs 0..n-1 (10 steps each) and
// returns its root.
func newCommitTestArchive(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	w, err := OpenWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutExperiment(schema.Experiment{Origin: schema.Ref{System: "memory", ID: "exp"}, Name: "exp"}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		writeCommitTestRun(t, w, i, 0, 10, nil)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return root
}

// dataFolderOf returns the entity key of a path under a table folder (or
// history/ or .staging/ of one), or "" for any other path, and whether the
// path is a table folder itself (or the root of history/ or .staging/).
func dataFolderOf(p string) (key string, whole bool) {
	p = strings.TrimPrefix(strings.TrimPrefix(p, historyDir+"/"), stagingDir+"/")
	if p == historyDir || p == stagingDir || p == "" || p == "." {
		return "", true
	}
	table, rest, _ := strings.Cut(p, "/")
	if !slices.Contains(Tables, table) {
		return "", false
	}
	if rest == "" {
		return "", true
	}
	key, _, _ = strings.Cut(rest, "/")
	return key, false
}

// TestCommitTouchesOnlyItsPaths: a writer that appends to one run,
// rewrites another and retires a third, in an archive of 30 runs, stats,
// walks, moves and fsyncs no file or folder of the other 27 runs, at its
// open, its commits or its close (no walk of a whole table folder, of
// history/ or of the archive), and the archive then checks clean and reads
// back as written.
func TestCommitTouchesOnlyItsPaths(t *testing.T) {
	root := newCommitTestArchive(t, 30)
	rs := &recordingStore{Store: newDirStore(root)}
	w, err := openStoreWriter(root, rs, false)
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := w.Run(commitTestRun(3).Origin.String())
	writeCommitTestRun(t, w, 3, 10, 12, &prev) // grown
	writeCommitTestRun(t, w, 4, 0, 5, nil)     // rewritten
	if ok, err := w.RetireRun(commitTestRun(5).Origin.String()); !ok || err != nil {
		t.Fatalf("RetireRun: %v, %v", ok, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, i := range []int{3, 4, 5} {
		allowed[EntityKey(commitTestRun(i).Origin.String())] = true
	}
	var data int
	for _, op := range rs.ops {
		_, p, _ := strings.Cut(op, " ")
		key, whole := dataFolderOf(p)
		if strings.HasPrefix(op, "walk ") && p == stagingDir {
			continue // looking for the trace of an interrupted commit
		}
		if strings.HasPrefix(op, "removeall ") && p == stagingDir {
			continue
		}
		if whole || (key != "" && !allowed[key]) {
			t.Errorf("the writer did %q: a path of no run it wrote", op)
		}
		if key != "" {
			data++
		}
	}
	if data == 0 {
		t.Fatalf("no data path recorded at all (ops: %q): the test sees nothing", rs.ops)
	}
	rep, err := Check(root)
	if err != nil || len(rep.Notes) > 0 {
		t.Fatalf("check: %v, notes %q", err, rep.Notes)
	}
	st, err := LoadState(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Manifest.Runs) != 29 {
		t.Fatalf("%d runs, want 29", len(st.Manifest.Runs))
	}
	if e, _ := st.Manifest.Run(commitTestRun(3).Origin.String()); e.Points != 12 {
		t.Errorf("grown run holds %d points, want 12", e.Points)
	}
	if e, _ := st.Manifest.Run(commitTestRun(4).Origin.String()); e.Points != 5 {
		t.Errorf("rewritten run holds %d points, want 5", e.Points)
	}
}

// TestRecoverWalksOnlyAfterInterruptedCommit: the whole tree is walked at
// a writer's open only when .staging/ holds the trace of an interrupted
// commit, and that walk then finishes it: a committed file left staged
// (a crash between the journal line and the moves) moves into place, and
// with the mark of a commit that staged nothing (a retired run whose move
// out was cut off) a file the manifest no longer lists moves to history/.
func TestRecoverWalksOnlyAfterInterruptedCommit(t *testing.T) {
	walked := func(rs *recordingStore) bool {
		return slices.Contains(rs.ops, "walk "+TableMetrics)
	}
	open := func(t *testing.T, root string) *recordingStore {
		t.Helper()
		rs := &recordingStore{Store: newDirStore(root)}
		w, err := openStoreWriter(root, rs, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(abs(root, stagingDir)); !notExist(err) {
			t.Errorf(".staging/ is left after the open and close: %v", err)
		}
		return rs
	}
	checkClean := func(t *testing.T, root string) {
		t.Helper()
		if rep, err := Check(root); err != nil || len(rep.Notes) > 0 {
			t.Fatalf("check: %v, notes %q", err, rep.Notes)
		}
	}
	root := newCommitTestArchive(t, 5)
	st, err := LoadState(root)
	if err != nil {
		t.Fatal(err)
	}
	e := st.Manifest.Runs[1]
	f, _ := e.File(TableMetrics)

	t.Run("clean", func(t *testing.T) {
		if walked(open(t, root)) {
			t.Error("an open after a clean close walked the tree")
		}
		checkClean(t, root)
	})
	t.Run("staged", func(t *testing.T) {
		// A committed file still in .staging/, as a crash leaves it.
		if err := newDirStore(root).Move(f.Path, path.Join(stagingDir, f.Path)); err != nil {
			t.Fatal(err)
		}
		if !walked(open(t, root)) {
			t.Error("an open with a committed file in .staging/ did not walk the tree")
		}
		if _, err := os.Stat(abs(root, f.Path)); err != nil {
			t.Fatalf("the staged file was not moved into place: %v", err)
		}
		checkClean(t, root)
	})
	t.Run("mark", func(t *testing.T) {
		// A file no longer listed, left in its table folder by a commit
		// cut off while it moved files out, with that commit's mark.
		stray := path.Join(path.Dir(f.Path), "000001-stray.parquet")
		data, err := os.ReadFile(abs(root, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		ds := newDirStore(root)
		if err := ds.WriteFile(stray, data); err != nil {
			t.Fatal(err)
		}
		if err := ds.WriteFile(path.Join(stagingDir, ".moving-test"), nil); err != nil {
			t.Fatal(err)
		}
		if !walked(open(t, root)) {
			t.Error("an open with a commit's mark in .staging/ did not walk the tree")
		}
		if _, err := os.Stat(abs(root, path.Join(historyDir, stray))); err != nil {
			t.Fatalf("the unlisted file was not moved to history/: %v", err)
		}
		// Check then names it only as left in history/ by an interrupted
		// write, for prune to remove.
		rep, err := Check(root)
		if err != nil || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], path.Join(historyDir, stray)) {
			t.Fatalf("check: %v, notes %q", err, rep.Notes)
		}
	})
}
