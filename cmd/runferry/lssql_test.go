package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestLsSQLShowsStoredPoints: `ls` of a runferry SQL database shows each
// run's points as the database stores them (runs.points) without --count,
// the same numbers --count reads from the metrics, and a total; the
// metric keys, which are not stored, stay "-". SQLite and PostgreSQL.
func TestLsSQLShowsStoredPoints(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { lsShowsStoredPoints(t, "sqlite:"+filepath.Join(t.TempDir(), "runs.db")) })
	t.Run("postgres", func(t *testing.T) {
		lsShowsStoredPoints(t, testenv.SharedPostgres(t).CreateDatabase(t, "ls_stored_points"))
	})
}

func lsShowsStoredPoints(t *testing.T, db string) {
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, db); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	pointsOf := func(args ...string) map[string]string {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"ls"}, args...)...)
		if code != 0 {
			t.Fatalf("ls %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 3 || !strings.Contains(line, "wandb:") {
				continue
			}
			got[f[1]] = f[len(f)-2] + " " + f[len(f)-1] // KEYS POINTS
		}
		if len(got) != 6 {
			t.Fatalf("ls %v: %d runs listed, want 6\n%s", args, len(got), out)
		}
		if last := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]; !strings.Contains(last, "142 points") {
			t.Errorf("ls %v: summary %q does not say 142 points", args, last)
		}
		return got
	}
	stored, counted := pointsOf(db), pointsOf("--count", db)
	for run, c := range counted {
		want := "- " + strings.Fields(c)[1]
		if stored[run] != want {
			t.Errorf("run %s: ls shows KEYS POINTS %q, want %q (ls --count: %q)", run, stored[run], want, c)
		}
	}
}
