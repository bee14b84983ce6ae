package parquetdir_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

// TestAppendFileDelta: a run appended to whose files changed (one changed,
// one new, two unchanged, one gone from the source; sinktest.Grown) is
// reported with the files stored and those kept and deleted, DuckDB over
// artifacts/ sees the run's current files only, and the snapshot before
// the append still lists the file since deleted.
func TestAppendFileDelta(t *testing.T) {
	ctx := context.Background()
	arch := filepath.Join(t.TempDir(), "archive")
	early, grown := sinktest.Grown()
	early.Runs, grown.Runs = early.Runs[:1], grown.Runs[:1]
	l := &sinktest.MemLedger{}
	sync := func(d *dataset.Dataset) transfer.RunResult {
		t.Helper()
		dst, err := parquetdir.New(arch)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := transfer.Copy(ctx, memsrc.New(d), dst, transfer.Options{Ledger: l, Backoff: func(int) time.Duration { return 0 }})
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil || len(rep.Runs) != 1 || rep.Totals.Failed != 0 {
			t.Fatalf("sync: %v %+v", err, rep.Totals)
		}
		return rep.Runs[0]
	}
	sync(early)
	r := sync(grown)
	got := fmt.Sprintf("appended=%v files=%d bytes=%d kept=%d deleted=%d", r.Appended, r.Files, r.Bytes, r.KeptFiles, r.DeletedFiles)
	if want := "appended=true files=2 bytes=70010 kept=2 deleted=1"; got != want {
		t.Fatalf("append: %s (%s), want %s", got, r.Reason, want)
	}

	out, err := exec.Command(testenv.Python(t), "-c", `import duckdb, json, sys
duckdb.execute("set enable_progress_bar = false")  # no progress bar on the output this test parses
print(json.dumps([r[0] for r in duckdb.execute("select path from read_parquet(?) order by path", [sys.argv[1] + "/artifacts/*/*.parquet"]).fetchall()]))`, arch).Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	var paths []string
	if err := json.Unmarshal(out, &paths); err != nil {
		t.Fatalf("duckdb printed %q: %v", out, err)
	}
	var want []string
	for _, f := range grown.Runs[0].Files {
		want = append(want, f.Path)
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("DuckDB over artifacts/ reads %v, want %v", paths, want)
	}

	// The snapshot before the append still holds the file since deleted.
	old, err := srcparquet.New(arch, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	d, err := dataset.Read(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(early, d, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("snapshot 1 differs from the early run: %v", diff)
	}
}
