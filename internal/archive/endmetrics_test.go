package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runferry/runferry/schema"
)

// TestEndMetrics checks that a run whose metrics file is written in the
// background (EndMetrics, then rich values and logs) commits exactly the
// files of the same run written at Commit, for a run that spills and is
// encoded in parallel and for a small one; that metrics after EndMetrics
// are refused; and that Abort after EndMetrics leaves nothing staged and no
// spill file.
func TestEndMetrics(t *testing.T) {
	defer func(n int) { SortBufferPoints = n }(SortBufferPoints)
	SortBufferPoints = 100_000
	gen := func(n int) []schema.Metric {
		out := make([]schema.Metric, 0, n)
		for i := range n {
			step := int64(i / 5)
			out = append(out, schema.Metric{Key: fmt.Sprintf("k%d", i%5), Step: step, Time: 1e12 + step, Value: float64(i) / 3})
		}
		return out
	}
	run := schema.Run{Origin: schema.Ref{System: "memory", ID: "r"}}
	write := func(pts []schema.Metric, end bool) (*RunEntry, string) {
		root := filepath.Join(t.TempDir(), "archive")
		w, err := OpenWriter(root)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		rw := w.OpenRun(run)
		for b := range slices.Chunk(pts, 10_000) {
			if err := rw.WriteMetrics(b); err != nil {
				t.Fatal(err)
			}
		}
		if end {
			if err := rw.EndMetrics(); err != nil {
				t.Fatal(err)
			}
			if err := rw.EndMetrics(); err != nil { // a second call does nothing
				t.Fatal(err)
			}
			if err := rw.WriteMetrics(pts[:1]); err == nil {
				t.Fatal("WriteMetrics after EndMetrics: no error")
			}
		}
		if err := rw.WriteRichValues([]schema.RichValue{{Key: "img", Step: 3, Type: "image-file", JSON: `{"_type":"image-file"}`}}); err != nil {
			t.Fatal(err)
		}
		if err := rw.WriteLogs([]schema.LogLine{{Stream: schema.Stdout, Line: "hello"}}); err != nil {
			t.Fatal(err)
		}
		entry, err := rw.finish()
		if err != nil {
			t.Fatal(err)
		}
		return entry, root
	}
	for _, n := range []int{metricRowGroup + 12345, 1000} {
		pts := gen(n)
		want, _ := write(pts, false)
		got, _ := write(pts, true)
		if got.Points != want.Points || len(got.Files) != len(want.Files) {
			t.Fatalf("%d points: entry %+v, want %+v", n, got, want)
		}
		for i := range want.Files {
			g, w := got.Files[i], want.Files[i]
			if g.Table != w.Table || g.Rows != w.Rows || (g.Table == TableMetrics && (g.SHA256 != w.SHA256 || g.Bytes != w.Bytes)) {
				t.Fatalf("%d points: file %d %+v, want %+v", n, i, g, w)
			}
		}
	}

	// Abort after EndMetrics: the background writer is waited for and
	// what it staged removed.
	root := filepath.Join(t.TempDir(), "archive")
	w, err := OpenWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rw := w.OpenRun(run)
	if err := rw.WriteMetrics(gen(metricRowGroup + 1)); err != nil {
		t.Fatal(err)
	}
	if err := rw.EndMetrics(); err != nil {
		t.Fatal(err)
	}
	if err := rw.Abort(); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (filepath.Base(filepath.Dir(p)) != filepath.Base(root) || filepath.Ext(p) == tmpSuffix) {
			if rel, _ := filepath.Rel(root, p); !slices.Contains([]string{".lock", ".commit.lock"}, rel) {
				left = append(left, rel)
			}
		}
		return nil
	})
	if len(left) > 0 {
		t.Fatalf("after Abort: %q left", left)
	}
}
