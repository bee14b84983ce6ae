package sqldb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestUnstorableTextFailsOnce: a run whose rich value (its JSON text)
// holds a NUL byte, or bytes that are not UTF-8, cannot be written to
// PostgreSQL (its text type holds neither), nor one holding bytes that
// are not UTF-8 to MariaDB (utf8mb4); console lines and param and tag
// values are stored as bytes instead (TestRawConsoleLinesStored,
// TestRawValuesStored), other text fields not yet. The run fails at its first attempt, not
// after every retry, with an error saying why and where it can go; the
// other run of the copy is committed, and nothing of the failed one is in
// the database.
func TestUnstorableTextFailsOnce(t *testing.T) {
	for name, c := range map[string]struct {
		line  string
		fresh func(*testing.T) string
		why   string
	}{
		"nul":            {"bad \x00 byte", freshPostgres, "PostgreSQL text holds neither NUL bytes nor bytes that are not UTF-8"},
		"latin1":         {"bad \xff byte", freshPostgres, "PostgreSQL text holds neither NUL bytes nor bytes that are not UTF-8"},
		"mariadb-latin1": {"bad \xff byte", freshMariaDB, "MySQL text (utf8mb4) holds no bytes that are not UTF-8"},
	} {
		line := c.line
		t.Run(name, func(t *testing.T) {
			loc := c.fresh(t)
			d := oneRun("bad", 3)
			d.Runs[0].RichValues = []schema.RichValue{{Key: "text", Type: "string", JSON: `"` + line + `"`}}
			good := oneRun("good", 3).Runs[0]
			d.Runs = append(d.Runs, good)
			dst := openSink(t, loc)
			defer dst.Close()
			rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{Attempts: 3, Backoff: func(int) time.Duration { return time.Millisecond }})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Totals.Committed != 1 || rep.Totals.Failed != 1 {
				t.Fatalf("totals %+v, want 1 committed, 1 failed", rep.Totals)
			}
			for _, r := range rep.Runs {
				if r.Origin != "memory:bad" {
					continue
				}
				if r.Attempts != 1 {
					t.Errorf("the run was tried %d times; retrying cannot help", r.Attempts)
				}
				if !strings.Contains(r.Error, c.why) || !strings.Contains(r.Error, "a Parquet archive or SQLite holds it") {
					t.Errorf("error %q does not say why", r.Error)
				}
			}
			src := openSource(t, loc)
			defer src.Close()
			n := 0
			for r, err := range src.Runs(context.Background(), schema.Ref{System: "memory", ID: "e"}) {
				if err != nil {
					t.Fatal(err)
				}
				if r.Origin.ID != "good" {
					t.Errorf("the database holds run %s", r.Origin)
				}
				n++
			}
			if n != 1 {
				t.Errorf("the database holds %d runs, want 1", n)
			}
		})
	}
}
