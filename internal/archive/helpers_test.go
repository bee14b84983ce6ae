package archive_test

import (
	"context"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	sinkparquet "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

var srcparquetNew = srcparquet.New

// write copies d into the archive at dir through the engine and the sink,
// as `runferry sync` does, and returns the report.
func write(t testing.TB, dir string, d *dataset.Dataset) *transfer.Report {
	t.Helper()
	dst, err := sinkparquet.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("copy into %s: %v %+v", dir, err, rep.Totals)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return rep
}

// read reads the archive's current state back through the source.
func read(t testing.TB, dir string) (*dataset.Dataset, error) {
	t.Helper()
	src, err := srcparquet.New(dir, 0)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return dataset.Read(context.Background(), src)
}

// expectEqual fails unless the archive at dir reads back as want.
func expectEqual(t testing.TB, dir string, want *dataset.Dataset) {
	t.Helper()
	got, err := read(t, dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("archive differs from what was written:\n%s", strings.Join(diff, "\n"))
	}
}

// dataFiles lists the current data files and blobs of the archive (a
// folder or an object-storage location), as slash paths relative to it.
func dataFiles(t testing.TB, dir string) []string {
	t.Helper()
	st, err := archive.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []string
	for _, top := range append(archive.Tables, "blobs") {
		err := st.Walk(top, func(p string, _ int64) error {
			out = append(out, p)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}
