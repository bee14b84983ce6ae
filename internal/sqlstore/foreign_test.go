package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// foreignTables: a database holding tables of its own named as
// runferry's (a team's hand-rolled runs and metrics tables) is refused
// before runferry creates anything there: the error names the tables and
// the way out (another database or schema, or ?mapping=), the user's
// tables keep their shape and rows, and no runferry_schema is left
// behind. A second attempt is refused the same way.
func foreignTables(t *testing.T, raw string) {
	t.Helper()
	ctx := context.Background()
	own := mustOpen(t, raw, ForMapping)
	for _, stmt := range []string{
		"CREATE TABLE runs (id INTEGER PRIMARY KEY, name VARCHAR(100), state VARCHAR(20))",
		"INSERT INTO runs (id, name, state) VALUES (1, 'mine', 'done')",
		"CREATE TABLE metrics (run_id INTEGER, metric VARCHAR(100), step INTEGER, value DOUBLE PRECISION)",
	} {
		if _, err := own.DB.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for attempt := 1; attempt <= 2; attempt++ {
		s := mustOpen(t, raw, ForWriting)
		err := s.Migrate(ctx)
		if err == nil {
			t.Fatalf("attempt %d: Migrate into a database with foreign runs and metrics tables succeeded", attempt)
		}
		for _, want := range []string{"runs, metrics", "no runferry_schema", "?mapping=FILE", "name another "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("attempt %d: error %q does not say %q", attempt, err, want)
			}
		}
	}
	var name, state string
	if err := own.DB.QueryRowContext(ctx, "SELECT name, state FROM runs WHERE id = 1").Scan(&name, &state); err != nil || name != "mine" || state != "done" {
		t.Errorf("the user's runs row: %q %q %v", name, state, err)
	}
	var n int
	if err := own.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM runs").Scan(&n); err != nil || n != 1 {
		t.Errorf("the user's runs table holds %d rows (%v), want 1", n, err)
	}
	if _, err := own.DB.ExecContext(ctx, "SELECT 1 FROM runferry_schema"); err == nil {
		t.Error("runferry_schema was created in the user's database")
	}
	if _, err := own.DB.ExecContext(ctx, "SELECT 1 FROM experiments"); err == nil {
		t.Error("runferry's experiments table was created beside the user's tables")
	}
}

func TestForeignTablesRefusedSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "own.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	foreignTables(t, "sqlite:"+path)
}

func TestForeignTablesRefusedPostgres(t *testing.T) {
	foreignTables(t, testenv.SharedPostgres(t).CreateDatabase(t, "foreign"))
}

// TestForeignTablesRefusedMariaDB: on MySQL, whose CREATE TABLE IF NOT
// EXISTS kept the foreign runs table, runferry recorded its schema over
// the user's tables without a word.
func TestForeignTablesRefusedMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv(MySQLPasswordEnv, m.Password)
	foreignTables(t, m.CreateDatabase(t, "foreign"))
}
