package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func parse(t testing.TB, raw string) location.Location {
	t.Helper()
	loc, err := location.Parse(raw, func(s string) (location.Kind, bool) {
		if s == "sqlite" {
			return location.PathKind, true
		}
		return location.URLKind, true
	})
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func open(t *testing.T, raw string, mode Mode) (*Store, error) {
	t.Helper()
	s, err := Open(context.Background(), parse(t, raw), mode)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func mustOpen(t *testing.T, raw string, mode Mode) *Store {
	t.Helper()
	s, err := open(t, raw, mode)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNewerSchemaRefused: a database whose runferry_schema names a
// version this runferry does not know is refused for writing and for
// reading, with both versions named.
func TestNewerSchemaRefused(t *testing.T) {
	raw := "sqlite:" + filepath.Join(t.TempDir(), "runs.db")
	s := mustOpen(t, raw, ForWriting)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.Exec("INSERT INTO runferry_schema (version, applied_ms, note) VALUES (99, 0, 'future')"); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []Mode{ForWriting, ForReading} {
		_, err := open(t, raw, mode)
		if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "version 99") || !strings.Contains(err.Error(), fmt.Sprintf("up to %d", Latest())) {
			t.Errorf("mode %d: err %v, want ErrNewerSchema naming versions 99 and %d", mode, err, Latest())
		}
	}
}

// TestReadingNeedsSchema: a source refuses a database runferry never
// wrote, and a missing SQLite file, instead of reading nothing.
func TestReadingNeedsSchema(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, "sqlite:"+empty, ForReading); err == nil || !strings.Contains(err.Error(), "no runferry schema") {
		t.Errorf("empty database: err %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.db")
	if _, err := open(t, "sqlite:"+missing, ForReading); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: err %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("reading created the database file")
	}
}

// upgradePath writes version 1, then offers every later version and one
// more (a new column): a source refuses the older schema with both
// versions named, a sink upgrades it through each version keeping what it
// held, and opening again changes nothing.
func upgradePath(t *testing.T, raw string) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:1]
	s := mustOpen(t, raw, ForWriting)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "kept"}
	if _, err := s.PutExperiment(ctx, exp); err != nil {
		t.Fatal(err)
	}
	next := saved[len(saved)-1].version + 1
	migrations = append(append([]migration(nil), saved...), migration{version: next, stmts: []string{"ALTER TABLE runs ADD COLUMN comment2 {TEXT}"}, read: true})

	if _, err := open(t, raw, ForReading); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("version 1, this runferry reads version %d", next)) {
		t.Fatalf("reading the older schema: err %v", err)
	}
	up := mustOpen(t, raw, ForWriting)
	for range 2 {
		if err := up.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	versions := schemaVersions(t, up)
	if len(versions) != next || versions[0] != 1 || versions[next-1] != next {
		t.Fatalf("runferry_schema holds versions %v, want 1 to %d", versions, next)
	}
	if _, err := up.DB.Exec("DELETE FROM run_marks WHERE 1 = 0"); err != nil {
		t.Fatalf("version 2's run_marks is missing: %v", err)
	}
	if _, err := up.DB.Exec("UPDATE runs SET comment2 = 'x' WHERE 1 = 0"); err != nil {
		t.Fatalf("the new column is missing: %v", err)
	}
	exps, err := mustOpen(t, raw, ForReading).Experiments(ctx)
	if err != nil || len(exps) != 1 || exps[0].Name != "kept" {
		t.Fatalf("after the upgrade: %v %+v", err, exps)
	}
}

func TestUpgradePathSQLite(t *testing.T) {
	upgradePath(t, "sqlite:"+filepath.Join(t.TempDir(), "runs.db"))
}

// TestUpgradePathPostgres covers PostgreSQL's path, where each version is
// one transaction under pg_advisory_lock.
func TestUpgradePathPostgres(t *testing.T) {
	upgradePath(t, testenv.SharedPostgres(t).CreateDatabase(t, "upgrade"))
}

// TestUpgradePathMariaDB covers MySQL's path, where DDL is not
// transactional.
func TestUpgradePathMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv(MySQLPasswordEnv, m.Password)
	upgradePath(t, m.CreateDatabase(t, "upgrade"))
}

// TestVersion1Readable: a database written at version 1 (before
// run_marks) is read as it is, its runs found by origin, and holds no
// base to append to; once a write upgrades it, a run it held is refused
// for appending (no mark), so the engine writes it whole once.
func TestVersion1Readable(t *testing.T) {
	ctx := context.Background()
	raw := "sqlite:" + filepath.Join(t.TempDir(), "v1.db")
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:1]
	s := mustOpen(t, raw, ForWriting)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "e"}
	expID, err := s.PutExperiment(ctx, exp)
	if err != nil {
		t.Fatal(err)
	}
	run := schema.Run{Origin: schema.Ref{System: "memory", ID: "r"}, Experiment: exp.Origin, Name: "r", Status: schema.StatusFinished}
	tx, err := s.BeginRun(ctx, expID, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Metrics(ctx, []schema.Metric{{Key: "loss", Step: 0, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
	migrations = saved

	r := mustOpen(t, raw, ForReading)
	got, err := r.Run(ctx, run.Origin.String())
	if err != nil || got.Name != "r" || got.Points != 1 {
		t.Fatalf("reading the version 1 database: %v %+v", err, got)
	}
	w := mustOpen(t, raw, ForWriting)
	if held, err := w.HasSchema(ctx); err != nil || !held {
		t.Fatalf("HasSchema of version 1: %v %v", held, err)
	}
	if found, fp, err := w.FindRun(ctx, run.Origin.String()); err != nil || !found || fp != "fp" {
		t.Fatalf("FindRun in version 1: %v %q %v", found, fp, err)
	}
	if _, _, _, ok, err := w.FindBase(ctx, run.Origin.String()); err != nil || ok {
		t.Fatalf("FindBase in version 1: ok %v, err %v", ok, err)
	}
	if err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.BeginAppend(ctx, expID, run, "m"); !errors.Is(err, ErrCannotAppend) || !strings.Contains(err.Error(), "without a mark") {
		t.Fatalf("appending to a run written at version 1: %v", err)
	}
}

// schemaVersions returns the versions runferry_schema of w's database
// records, in order.
func schemaVersions(t *testing.T, w *Store) []int {
	t.Helper()
	rows, err := w.DB.Query("SELECT version FROM runferry_schema ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return versions
}
