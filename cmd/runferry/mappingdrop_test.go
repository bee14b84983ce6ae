package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMappedConnectionDropped: copying the example database from
// PostgreSQL through its mapping while every metrics query's connection
// is terminated (the metrics table held under an ACCESS EXCLUSIVE lock by
// a second connection, so that each query waits until it is terminated)
// fails each run with one line naming the run, the mapping entry and the
// dropped connection, exits non-zero and leaves no run in the archive;
// once the lock is gone, the same copy completes and check is clean.
func TestMappedConnectionDropped(t *testing.T) {
	dsn := testenv.SharedPostgres(t).CreateDatabase(t, "cli_mapped_dropped")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "examples", "sql-mapping", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	execSQL(t, admin, string(script))
	_, m := exampleDB(t)
	src := dsn + "&mapping=" + writeMapping(t, m)
	if !strings.Contains(dsn, "?") {
		src = dsn + "?mapping=" + writeMapping(t, m)
	}
	ctx := context.Background()
	lock, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, "LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done, killed := terminator(admin)
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, archive, "--no-state", "--retries", "0")
	close(done)
	if n := <-killed; n == 0 {
		t.Fatal("no backend was terminated")
	}
	if code == 0 {
		t.Fatalf("copy with its connections dropped: exit 0\n%s\n%s", out, errOut)
	}
	failed := regexp.MustCompile(`(?m)^FAILED mytracker:\S+/run/(\d) .*metrics of run (\d): .*terminating connection.*$`).FindAllStringSubmatch(out, -1)
	if len(failed) != 3 {
		t.Fatalf("copy: exit %d; want 3 FAILED lines naming the run, the metrics entry and the dropped connection, got %d\nstdout:\n%s\nstderr:\n%s", code, len(failed), out, errOut)
	}
	t.Logf("copy: exit %d\n%s", code, out)
	for _, f := range failed {
		if f[1] != f[2] {
			t.Errorf("FAILED line names run %s, its error run %s", f[1], f[2])
		}
	}
	if code, out, _ := runCLI(t, "ls", archive); code == 0 && strings.Contains(out, "mytracker:") {
		t.Errorf("the archive holds runs after every run failed:\n%s", out)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, archive, "--no-state"); code != 0 || !strings.Contains(out, "copied 3 runs (7 points") {
		t.Fatalf("copy after the lock was released: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", src, archive); code != 0 || !strings.Contains(out, "3 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
}
