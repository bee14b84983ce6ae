package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestTenSyncsChangeNothing syncs the W&B fixtures into a Parquet archive
// and into a real MLflow server, then syncs ten more times with nothing
// changed: each of those reports every run unchanged and nothing
// transferred (no run written, no point, file or byte), and the
// destination stays byte-identical: every file of the archive by SHA-256
// (the manifest among them), and MLflow as its REST API shows it
// (experiments, runs with their info, tags, params, latest metrics and
// inputs, each metric key's full history, every file's path, size and
// SHA-256), and the SQL sink's database (SQLite and PostgreSQL) as every
// row of every table reads, in order.
func TestTenSyncsChangeNothing(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	prefix := fmt.Sprintf("tensyncs-%d/", testenv.FreePort(t))
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "archive")
	sqliteFile := filepath.Join(dir, "tensyncs.db")
	pg := testenv.SharedPostgres(t).CreateDatabase(t, "cli_tensyncs")
	for _, c := range []struct {
		name, dst string
		view      func(t *testing.T) string
	}{
		{"parquet", "parquet:" + archive, func(t *testing.T) string { return archiveView(t, archive) }},
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + prefix, func(t *testing.T) string { return mlflowView(t, api, prefix) }},
		{"sqlite", "sqlite:" + sqliteFile, func(t *testing.T) string {
			return sqlView(t, "sqlite", sqliteFile, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
		}},
		{"postgresql", pg, func(t *testing.T) string {
			return sqlView(t, "pgx", pg, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ledger := filepath.Join(dir, c.name+".db")
			sync := func() transfer.Totals {
				t.Helper()
				rep := filepath.Join(dir, c.name+"-report.json")
				if code, out, errOut := runCLI(t, "sync", "--accept-gaps", fixtures, c.dst, "--state", ledger, "--report", rep); code != 0 {
					t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
				}
				r := readReport(t, rep)
				return r.Totals
			}
			first := sync()
			if first.Committed < 5 || first.Points == 0 || first.Files == 0 {
				t.Fatalf("first sync: %+v", first)
			}
			before := c.view(t)
			for i := range 10 {
				got := sync()
				// The ledger's record of the source's gaps (fixture fxa00001's
				// file not copied) is counted again at every sync.
				want := transfer.Totals{Runs: first.Runs, Unchanged: first.Committed, Damaged: first.Damaged, FilesNotCopied: first.FilesNotCopied}
				if got != want {
					t.Errorf("sync %d with nothing changed: %+v, want %+v", i+2, got, want)
				}
				if after := c.view(t); after != before {
					t.Fatalf("sync %d with nothing changed changed the destination:\nbefore:\n%s\nafter:\n%s", i+2, before, after)
				}
			}
		})
	}
}

// archiveView lists every file under dir with its size and SHA-256.
func archiveView(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, path)
		lines = append(lines, fmt.Sprintf("%s %d %s", rel, len(b), hex.EncodeToString(sum[:])))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 10 {
		t.Fatalf("archive holds %d files", len(lines))
	}
	return strings.Join(lines, "\n")
}

// sqlView renders every row of every table of the database (tables as
// listTables lists them), each table's rows ordered by all their columns.
func sqlView(t *testing.T, driver, dsn, listTables string) string {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query(listTables)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("the database holds only the tables %v", tables)
	}
	var out []string
	total := 0
	for _, table := range tables {
		out = append(out, "table "+table)
		cols, err := db.Query(`SELECT * FROM "` + table + `" WHERE 1 = 0`)
		if err != nil {
			t.Fatal(err)
		}
		names, err := cols.Columns()
		cols.Close()
		if err != nil {
			t.Fatal(err)
		}
		order := make([]string, len(names))
		for i := range names {
			order[i] = fmt.Sprint(i + 1)
		}
		rows, err := db.Query(`SELECT * FROM "` + table + `" ORDER BY ` + strings.Join(order, ", "))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(names))
			ptrs := make([]any, len(names))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					vals[i] = string(b)
				}
			}
			line, err := json.Marshal(vals)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(line))
			total++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if total < 20 {
		t.Fatalf("the database holds only %d rows", total)
	}
	return strings.Join(out, "\n")
}

// mlflowView renders what the MLflow REST API shows of the experiments
// whose names start with prefix, deleted ones included.
func mlflowView(t *testing.T, api *mlflowapi.Client, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var out []string
	add := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	for e, err := range api.SearchExperiments(ctx, "name LIKE '"+prefix+"%'", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		add(e)
		for r, err := range api.SearchRuns(ctx, []string{e.ExperimentID}, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			add(r)
			var keys []string
			for _, m := range r.Data.Metrics {
				keys = append(keys, m.Key)
			}
			slices.Sort(keys)
			for _, k := range keys {
				for page, err := range api.MetricHistory(ctx, r.Info.RunID, k) {
					if err != nil {
						t.Fatal(err)
					}
					add(page)
				}
			}
			for f, err := range api.ListArtifacts(ctx, r.Info.RunID, "") {
				if err != nil {
					t.Fatal(err)
				}
				body, err := api.OpenArtifact(ctx, r.Info.RunID, r.Info.ArtifactURI, f.Path)
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				_, err = io.Copy(h, body)
				body.Close()
				if err != nil {
					t.Fatal(err)
				}
				add([]any{f, hex.EncodeToString(h.Sum(nil))})
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("MLflow shows %d items under %s", len(out), prefix)
	}
	return strings.Join(out, "\n")
}
