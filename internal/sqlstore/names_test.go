package sqlstore

import (
	"context"
	"database/sql"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

// Names that MySQL's tables of versions 1 to 3 could not hold apart or at
// all: names differing only by trailing spaces (utf8mb4_bin is PAD SPACE),
// and names over VARCHAR(700), two of them alike in their first 800
// characters, one of 3000 two-byte characters.
type hardNames struct {
	keys  []string          // params, tags, labels, metric keys
	files map[string]string // path: body
	// suffixes end the ids of two experiments ("e"+suffix) and two runs
	// ("r"+suffix) namesKeptApart writes.
	suffixes [2]string
}

var (
	padded = hardNames{keys: []string{"loss", "loss ", "loss  ", " loss"},
		files: map[string]string{"f.txt": "no space", "f.txt ": "one space"}, suffixes: [2]string{"", " "}}
	long = hardNames{keys: []string{"loss", strings.Repeat("k", 800) + "a", strings.Repeat("k", 800) + "b", strings.Repeat("é", 3000)},
		files:    map[string]string{"f.txt": "short", "dir/" + strings.Repeat("d", 900) + ".txt": "long path"},
		suffixes: [2]string{strings.Repeat("o", 800) + "a", strings.Repeat("o", 800) + "b"}}
)

// hardRun returns a run of origin memory:id holding every name of
// names.keys as a param, tag, label and metric key (two points each, the
// value telling the key), and names.files.
func hardRun(id string, names hardNames) (schema.Run, []schema.Metric, map[string]string) {
	run := schema.Run{Origin: schema.Ref{System: "memory", ID: id}, Experiment: schema.Ref{System: "memory", ID: "e"}, Name: id, Status: schema.StatusFinished}
	var points []schema.Metric
	for i, k := range names.keys {
		run.Params = append(run.Params, schema.Param{Key: k, Value: "p" + string(rune('0'+i))})
		run.Tags = append(run.Tags, schema.Tag{Key: k, Value: "t" + string(rune('0'+i))})
		run.Labels = append(run.Labels, k)
		for step := range int64(2) {
			points = append(points, schema.Metric{Key: k, Step: step, Time: 1000 + step, Value: float64(i*10) + float64(step)})
		}
	}
	run.Canonicalize()
	return run, points, names.files
}

// writeHard commits hardRun(id, names) into experiment expID.
func writeHard(t *testing.T, s *Store, expID int64, id string, names hardNames) {
	t.Helper()
	ctx := context.Background()
	run, points, files := hardRun(id, names)
	tx, err := s.BeginRun(ctx, expID, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Metrics(ctx, points); err != nil {
		tx.Abort()
		t.Fatal(err)
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		body := files[p]
		if err := tx.File(ctx, schema.Artifact{Path: p, Size: int64(len(body))}, strings.NewReader(body)); err != nil {
			tx.Abort()
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
}

// checkHard reads the run stored under memory:id back whole and compares
// it with hardRun(id, names): params, tags, labels, every key's points (each
// key's together, in step order) and the files with their bodies.
func checkHard(t *testing.T, s *Store, id string, names hardNames) {
	t.Helper()
	ctx := context.Background()
	want, wantPoints, wantFiles := hardRun(id, names)
	got, err := s.Run(ctx, "memory:"+id)
	if err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	if !slices.Equal(got.Params, want.Params) || !slices.Equal(got.Tags, want.Tags) || !slices.Equal(got.Labels, want.Labels) {
		t.Errorf("run %s: params %q tags %q labels %q\nwant %q %q %q", id, got.Params, got.Tags, got.Labels, want.Params, want.Tags, want.Labels)
	}
	byKey := map[string][]schema.Metric{}
	var order []string
	err = s.Metrics(ctx, got.ID, 3, func(p []schema.Metric) error {
		for _, m := range p {
			if len(order) == 0 || order[len(order)-1] != m.Key {
				if byKey[m.Key] != nil {
					t.Errorf("run %s: the points of key %.20q... come apart", id, m.Key)
				}
				order = append(order, m.Key)
			}
			byKey[m.Key] = append(byKey[m.Key], m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantByKey := map[string][]schema.Metric{}
	for _, m := range wantPoints {
		wantByKey[m.Key] = append(wantByKey[m.Key], m)
	}
	if !maps.EqualFunc(byKey, wantByKey, slices.Equal) {
		t.Errorf("run %s: %d keys read back, want %d; points %v", id, len(byKey), len(wantByKey), byKey["loss"])
	}
	files, err := s.Files(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	gotFiles := map[string]string{}
	var paths []string
	for _, f := range files {
		b, err := io.ReadAll(s.OpenFile(ctx, f))
		if err != nil {
			t.Fatal(err)
		}
		gotFiles[f.Path] = string(b)
		paths = append(paths, f.Path)
	}
	if !maps.Equal(gotFiles, wantFiles) || !slices.IsSorted(paths) {
		t.Errorf("run %s: files %q (in order %q), want %q", id, gotFiles, paths, wantFiles)
	}
}

// namesKeptApart: two experiments whose origins differ only by
// names.suffixes, with tags of names.keys, stay two; a run holding
// names.keys as params, tags, labels and metric keys and names.files is
// committed and reads back whole, and so does a second run whose origin
// differs from the first by names.suffixes, the first kept.
func namesKeptApart(t *testing.T, raw string, names hardNames) {
	ctx := context.Background()
	s := mustOpen(t, raw, ForWriting)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	sfx := names.suffixes
	for _, o := range []string{"e" + sfx[0], "e" + sfx[1]} {
		e := schema.Experiment{Origin: schema.Ref{System: "memory", ID: o}, Name: "[" + o + "]"}
		for i, k := range names.keys {
			e.Tags = append(e.Tags, schema.Tag{Key: k, Value: o + string(rune('0'+i))})
		}
		e.Canonicalize()
		id, err := s.PutExperiment(ctx, e)
		if err != nil {
			t.Fatalf("experiment %q: %v", o, err)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Fatalf("experiments memory:e%.12q and memory:e%.12q are one, id %d", sfx[0], sfx[1], ids[0])
	}
	writeHard(t, s, ids[0], "r"+sfx[0], names)
	writeHard(t, s, ids[0], "r"+sfx[1], names)
	r := mustOpen(t, raw, ForReading)
	exps, err := r.Experiments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var expNames []string
	for _, e := range exps {
		expNames = append(expNames, e.Name)
		if len(e.Tags) != len(names.keys) || e.Tags[0].Value[:1] != e.Origin.ID[:1] {
			t.Errorf("experiment %q: tags %q", e.Origin.ID, e.Tags)
		}
	}
	if want := []string{"[e" + sfx[0] + "]", "[e" + sfx[1] + "]"}; !slices.Equal(expNames, want) {
		t.Errorf("experiments %q, want %q", expNames, want)
	}
	checkHard(t, r, "r"+sfx[0], names)
	checkHard(t, r, "r"+sfx[1], names)
	if r.Dialect.Name != "mysql" {
		return
	}
	// docs/SQL.md's queries by name, exact, with and without name_hash.
	rid, err := r.RunID(ctx, "memory:r"+sfx[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range names.keys {
		var plain, hashed int
		err := r.DB.QueryRow(`SELECT (SELECT COUNT(*) FROM metrics WHERE run_id = ? AND name = ?),
			(SELECT COUNT(*) FROM metrics WHERE run_id = ? AND name = ? AND name_hash = UNHEX(LEFT(SHA2(?, 256), 16)))`,
			rid, k, rid, k, k).Scan(&plain, &hashed)
		if err != nil || plain != 2 || hashed != 2 {
			t.Errorf("key %.12q: %d and %d points by name and by name and hash (%v), want 2", k, plain, hashed, err)
		}
	}
}

func TestTrailingSpacesKeptApartSQLite(t *testing.T) {
	namesKeptApart(t, "sqlite:"+filepath.Join(t.TempDir(), "runs.db"), padded)
}

func TestTrailingSpacesKeptApartPostgres(t *testing.T) {
	namesKeptApart(t, testenv.SharedPostgres(t).CreateDatabase(t, "padded"), padded)
}

func TestTrailingSpacesKeptApartMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv(MySQLPasswordEnv, m.Password)
	namesKeptApart(t, m.CreateDatabase(t, "padded"), padded)
}

func TestLongNamesHeldSQLite(t *testing.T) {
	namesKeptApart(t, "sqlite:"+filepath.Join(t.TempDir(), "runs.db"), long)
}

func TestLongNamesHeldPostgres(t *testing.T) {
	namesKeptApart(t, testenv.SharedPostgres(t).CreateDatabase(t, "long"), long)
}

func TestLongNamesHeldMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv(MySQLPasswordEnv, m.Password)
	namesKeptApart(t, m.CreateDatabase(t, "long"), long)
}

// namesUpgrade: a database written at version 3 (main's schema before
// NO PAD and long names), holding a run with metric points, params, tags,
// labels and files, is read as it is, then upgraded in place by the next
// write (on MySQL also when an upgrade was cut short half way, and
// finished again after it was whole); the old run reads back whole, an
// append to it puts its new points with the old ones of each key, and a
// new run of padded and long names reads back whole.
func namesUpgrade(t *testing.T, raw string) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:3]
	old := mustOpen(t, raw, ForWriting)
	if err := old.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	expID, err := old.PutExperiment(ctx, schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "e",
		Tags: []schema.Tag{{Key: "team", Value: "vision"}}})
	if err != nil {
		t.Fatal(err)
	}
	short := hardNames{keys: []string{"acc", "loss", "system/cpu"}, files: map[string]string{"a.txt": "a", "b/c.txt": "bc"}}
	run, points, files := hardRun("old", short)
	tx, err := old.BeginRun(ctx, expID, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Metrics(ctx, points); err != nil {
		t.Fatal(err)
	}
	for p, body := range files {
		if err := tx.File(ctx, schema.Artifact{Path: p, Size: int64(len(body))}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	tx.Mark = "m1"
	if err := tx.Commit(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
	migrations = saved

	checkHard(t, mustOpen(t, raw, ForReading), "old", short) // version 3 read as it is
	w := mustOpen(t, raw, ForWriting)
	if w.Dialect.Name == "mysql" {
		// MySQL commits each statement: a migration killed half way
		// leaves some tables changed and no version row.
		migrations = append(slices.Clone(saved[:3]), migration{version: 4, stmts: schemaV4MySQL[:7], dialect: "mysql"})
		if err := w.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := w.DB.Exec("DELETE FROM runferry_schema WHERE version = 4"); err != nil {
			t.Fatal(err)
		}
		migrations = saved
	}
	if err := w.Migrate(ctx); err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	if w.Dialect.Name == "mysql" {
		// Cut short after its last statement: every one runs again.
		if _, err := w.DB.Exec("DELETE FROM runferry_schema WHERE version = 4"); err != nil {
			t.Fatal(err)
		}
		if err := w.Migrate(ctx); err != nil {
			t.Fatalf("finishing an upgrade cut short after its last statement: %v", err)
		}
	}
	versions := schemaVersions(t, w)
	if !slices.Equal(versions, []int{1, 2, 3, 4}) {
		t.Fatalf("runferry_schema holds %v, want [1 2 3 4]", versions)
	}
	if w.Dialect.Name == "mysql" {
		// Every name and origin column is NO PAD now.
		var n int
		err := w.DB.QueryRow(`SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
			AND ((TABLE_NAME IN ('experiments', 'runs') AND COLUMN_NAME = 'origin')
			  OR (COLUMN_NAME IN ('name', 'label', 'path') AND TABLE_NAME IN ('experiment_tags', 'params', 'tags', 'labels', 'metrics', 'files')))
			AND DATA_TYPE = 'longtext' AND COLLATION_NAME = 'utf8mb4_nopad_bin'`).Scan(&n)
		if err != nil || n != 8 {
			t.Errorf("%d origin and name columns NO PAD (%v), want 8", n, err)
		}
		// Runs and experiments are looked up by origin through an index.
		for _, table := range []string{"runs", "experiments"} {
			var id, selType, tbl, typ, possible, key, keyLen, ref, extra sql.NullString
			var rowsN sql.NullInt64
			err := w.DB.QueryRow("EXPLAIN SELECT id FROM "+table+" WHERE origin = ?", "memory:old").
				Scan(&id, &selType, &tbl, &typ, &possible, &key, &keyLen, &ref, &rowsN, &extra)
			if err != nil || key.String != table+"_origin_prefix" {
				t.Errorf("%s looked up by origin with key %q (%v), want %s_origin_prefix", table, key.String, err, table)
			}
		}
		// Every table keeps a primary key.
		err = w.DB.QueryRow(`SELECT COUNT(*) FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = DATABASE()
			AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS c WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA
				AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY')`).Scan(&n)
		if err != nil || n != 0 {
			t.Errorf("%d tables without a primary key (%v), want 0", n, err)
		}
	}
	checkHard(t, mustOpen(t, raw, ForReading), "old", short)

	// An append after the upgrade: the new points of each key come with
	// the old ones (MySQL: the migration's name_hash is runferry's).
	tx, err = w.BeginAppend(ctx, expID, run, "m1")
	if err != nil {
		t.Fatal(err)
	}
	var more []schema.Metric
	for _, k := range short.keys {
		more = append(more, schema.Metric{Key: k, Step: 5, Time: 2000, Value: 0.5})
	}
	if err := tx.Metrics(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx, "fp2"); err != nil {
		t.Fatal(err)
	}
	r := mustOpen(t, raw, ForReading)
	rid, err := r.RunID(ctx, "memory:old")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	steps := map[string][]int64{}
	err = r.Metrics(ctx, rid, 2, func(p []schema.Metric) error {
		for _, m := range p {
			if len(keys) == 0 || keys[len(keys)-1] != m.Key {
				keys = append(keys, m.Key)
			}
			steps[m.Key] = append(steps[m.Key], m.Step)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(short.keys) {
		t.Errorf("after the append, keys come in %d runs %q, want each key's points together", len(keys), keys)
	}
	for _, k := range short.keys {
		if !slices.Equal(steps[k], []int64{0, 1, 5}) {
			t.Errorf("key %s: steps %v, want [0 1 5]", k, steps[k])
		}
	}

	eid, _, err := w.ExperimentID(ctx, "memory:e")
	if err != nil {
		t.Fatal(err)
	}
	writeHard(t, w, eid, "padded", padded)
	writeHard(t, w, eid, "long", long)
	r = mustOpen(t, raw, ForReading)
	checkHard(t, r, "padded", padded)
	checkHard(t, r, "long", long)
}

func TestNamesUpgradeSQLite(t *testing.T) {
	namesUpgrade(t, "sqlite:"+filepath.Join(t.TempDir(), "runs.db"))
}

func TestNamesUpgradePostgres(t *testing.T) {
	namesUpgrade(t, testenv.SharedPostgres(t).CreateDatabase(t, "namesup"))
}

// TestNamesUpgradeMariaDB runs on a server that requires a primary key in
// every table (innodb_force_primary_key, as managed MySQL services set
// sql_require_primary_key), restored after the test.
func TestNamesUpgradeMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv(MySQLPasswordEnv, m.Password)
	if err := m.Exec("", "SET GLOBAL innodb_force_primary_key = ON"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Exec("", "SET GLOBAL innodb_force_primary_key = OFF"); err != nil {
			t.Error(err)
		}
	})
	namesUpgrade(t, m.CreateDatabase(t, "namesup"))
}
