package parquetdir_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

// growingInto syncs the W&B folder dir into the archive at arch with
// ledger (nil: none), each sync through a newly opened sink, and checks
// each against the archive read back as a source.
func growingInto(arch, dir string, ledger transfer.Ledger) *sinktest.Growing {
	return &sinktest.Growing{Dir: dir, Ledger: ledger,
		Sink: func(t *testing.T) (sinks.Sink, func() error) {
			dst, err := parquetdir.New(arch)
			if err != nil {
				t.Fatal(err)
			}
			return dst, dst.Close
		},
		Read: func(t *testing.T) sources.Source {
			back, err := srcparquet.New(arch, 0)
			if err != nil {
				t.Fatal(err)
			}
			return back
		}}
}

// onlyRun is the manifest entry of the one run the archive holds.
func onlyRun(t *testing.T, arch string) archive.RunEntry {
	t.Helper()
	st, err := archive.LoadState(arch)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Manifest.Runs) != 1 {
		t.Fatalf("the archive holds %d runs, want 1", len(st.Manifest.Runs))
	}
	return st.Manifest.Runs[0]
}

// metricsFiles are the run's metrics files, in the order written.
func metricsFiles(e archive.RunEntry) []archive.FileEntry {
	var out []archive.FileEntry
	for _, f := range e.Files {
		if f.Table == archive.TableMetrics {
			out = append(out, f)
		}
	}
	return out
}

// requireEachPointOnce requires DuckDB, reading the archive's metrics
// folder as a user would, to see each of steps 0..steps-1 of the keys acc
// and loss (what sinktest.GrowWandb logs) exactly once.
func requireEachPointOnce(t *testing.T, arch string, steps int) {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), "-c", `import duckdb, json, sys
duckdb.execute("set enable_progress_bar = false")  # no progress bar on the output this test parses
rows = duckdb.execute("select key, step, count(*) from read_parquet(?) group by key, step order by key, step",
                      [sys.argv[1] + "/metrics/*/*.parquet"]).fetchall()
print(json.dumps(rows))`, arch).Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	var got [][]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("duckdb printed %q: %v", out, err)
	}
	var want [][]any
	for _, key := range []string{"acc", "loss"} {
		for step := range steps {
			want = append(want, []any{key, float64(step), float64(1)})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("duckdb reads (key, step, count):\n%v\nwant each of steps 0..%d of acc and loss once", got, steps-1)
	}
}
