package mlflow_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestConsoleAppendBytes measures, at the real segment size (8 MiB), the
// console bytes an append sends into MLflow: a run with 300,000 console
// lines (about 33 MB: JSON lines and their plain text) is copied, then
// synced after 1,000 more lines, through a recording proxy that sums the
// bodies of the console files uploaded. It requires the append to send
// at most two segments (JSON and text) of at most 8 MiB plus a line, and
// logs both sizes (docs/BENCHMARKS.md, "Console output into MLflow"). It
// runs only with RUNFERRY_MEASURE_CONSOLE=1 (about a minute).
func TestConsoleAppendBytes(t *testing.T) {
	if os.Getenv("RUNFERRY_MEASURE_CONSOLE") == "" {
		t.Skip("a measurement: RUNFERRY_MEASURE_CONSOLE=1 runs it")
	}
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	proxy := newRecordingProxy(t, srv.URL)
	early, grown := withConsole(300_000, 301_000)
	dst, _, _ := pair(t, proxy.srv.URL)
	opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return time.Millisecond }}
	sync := func(ds *dataset.Dataset) (bytes int64, files int, r transfer.RunResult) {
		t.Helper()
		rep, err := transfer.Copy(ctx, memsrc.New(ds), dst, opt)
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("copy: %v %+v", err, rep.Totals)
		}
		for _, req := range proxy.take() {
			if req.method == http.MethodPut && consoleFile.MatchString(req.path) && !strings.Contains(req.path, "/append-base/") {
				bytes += int64(len(req.body))
				files++
			}
		}
		for _, res := range rep.Runs {
			if res.Origin == ds.Runs[0].Run.Origin.String() {
				r = res
			}
		}
		return bytes, files, r
	}
	whole, n1, first := sync(early)
	sent, n2, second := sync(grown)
	t.Logf("first copy: %d console files, %d bytes (%d lines); append of 1,000 lines: %d files, %d bytes (%d lines sent, %d kept)",
		n1, whole, first.LogLines, n2, sent, second.LogLines, second.KeptLogLines)
	if !second.Appended || n2 > 4 || sent > 2*(8<<20+200) || sent >= whole/2 {
		t.Fatalf("the append sent %d console files, %d bytes (appended %v); want at most two segments and their text", n2, sent, second.Appended)
	}
}
