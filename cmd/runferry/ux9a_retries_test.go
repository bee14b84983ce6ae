package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestWandbCloudRetriesBounded: with every parquet history export download
// answering 500, `copy --retries 1` of one W&B cloud run tries each
// download at most twice in each of the run's two attempts (4 requests at
// the server; without the bound each download was retried 8 times, with
// backoff up to a minute, in each attempt), then counts the run as failed,
// names it and exits 3. The wait lines say what is retried: the run, the
// history export, the answer and which retry of how many.
func TestWandbCloudRetriesBounded(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv, loc := fixtureServer(t, key)
	const origin = "wandb:fixture-entity/runferry-fixtures/fxa00001"
	const bound = 4 // (1 + --retries) tries of a download, in each of 1 + --retries attempts
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var downloads atomic.Int64
	var mu sync.Mutex
	paths := map[string]bool{}
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/exports/") {
			return false
		}
		mu.Lock()
		paths[r.URL.Path] = true
		mu.Unlock()
		if downloads.Add(1) > bound {
			cancel() // unbounded: stop the job rather than wait minutes
		}
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	var out, errb bytes.Buffer
	code := run(ctx, []string{"copy", loc, "parquet:" + filepath.Join(t.TempDir(), "a"), "--no-state", "--run", "fxa00001", "--retries", "1"}, &out, &errb)
	stdout, stderr := out.String(), errb.String()
	if n := downloads.Load(); n > bound || n < 2 || len(paths) != 1 {
		t.Fatalf("%d export downloads of %d exports asked, want 2 to %d of one (the first export fails the attempt)\n%s%s", n, len(paths), bound, stdout, stderr)
	}
	if code != exitRunsFailed || !strings.Contains(stdout, "FAILED "+origin+" (run-a-everything) after 2 attempts: ") ||
		!strings.Contains(stdout, "history export 1 of ") || !strings.Contains(lastLine(stdout), "copied 0 runs") || !strings.Contains(lastLine(stdout), ", 1 failed") {
		t.Fatalf("exit %d, want %d with the run failed and named\n%s%s", code, exitRunsFailed, stdout, stderr)
	}
	want := `because="retrying after the server answered 500 Internal Server Error (backoff, retry 1 of 1): run fixture-entity/runferry-fixtures/fxa00001: history export 1 of `
	if !strings.Contains(stderr, "waiting on the server") || !strings.Contains(stderr, want) {
		t.Errorf("no wait line naming the run and the export (%s)\n%s", want, stderr)
	}
}
