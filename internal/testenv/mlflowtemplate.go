package testenv

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", to copy the migrated store
)

// sqliteTemplate is an MLflow SQLite store as the venv's MLflow migrates it, empty: the
// store of the first fresh SQLite-backed server of the test binary, copied once it
// answers /health and before any test wrote to it, with the Default experiment the server
// created (the only row not written by the migrations) taken out. Each later fresh
// SQLite-backed server starts on a copy of it instead of running every alembic migration
// again (about 1.7 s of CPU a start); it still creates its own Default experiment, as on an
// empty store. It lives in memory only, so it dies with the test binary.
var sqliteTemplate struct {
	mu    sync.Mutex
	tried bool   // a template was made or could not be; never tried twice
	db    []byte // nil: none (not yet, or the store held more than the migrations wrote)
	err   error  // why not, for SQLiteTemplateErr
}

// NoSQLiteTemplateEnv, set to 1, makes every fresh SQLite-backed server migrate its own
// store (no template), to measure what the template saves or to rule it out.
const NoSQLiteTemplateEnv = "RUNFERRY_TESTENV_NO_SQLITE_TEMPLATE"

// SQLiteTemplateFileEnv names a file holding the template of a parent test binary
// (WriteSQLiteTemplate) for a child it re-executes as a helper: the child's fresh
// SQLite-backed servers start on it from the first one, instead of the first migrating its
// own store (about 1.7 s of CPU). The file is only read, once; if it cannot be, the child's
// first server migrates its store as without it.
const SQLiteTemplateFileEnv = "RUNFERRY_TESTENV_SQLITE_TEMPLATE_FILE"

// sqliteTemplateBytes returns the template, or nil if there is none yet.
func sqliteTemplateBytes() []byte {
	if os.Getenv(NoSQLiteTemplateEnv) == "1" {
		return nil
	}
	sqliteTemplate.mu.Lock()
	defer sqliteTemplate.mu.Unlock()
	if file := os.Getenv(SQLiteTemplateFileEnv); sqliteTemplate.db == nil && !sqliteTemplate.tried && file != "" {
		sqliteTemplate.tried = true
		sqliteTemplate.db, sqliteTemplate.err = os.ReadFile(file)
		if sqliteTemplate.err != nil || len(sqliteTemplate.db) == 0 {
			sqliteTemplate.db, sqliteTemplate.tried = nil, false // the first server migrates its own
		}
	}
	return sqliteTemplate.db
}

// WriteSQLiteTemplate writes this binary's template into the file path and returns the
// environment entry (SQLiteTemplateFileEnv=path) that hands it to a child test binary, or
// "" and no file when the binary has no template (no fresh SQLite-backed server has
// answered yet, or NoSQLiteTemplateEnv is set).
func WriteSQLiteTemplate(path string) (string, error) {
	db := sqliteTemplateBytes()
	if db == nil {
		return "", nil
	}
	if err := os.WriteFile(path, db, 0o600); err != nil {
		return "", err
	}
	return SQLiteTemplateFileEnv + "=" + path, nil
}

// noteSQLiteTemplate makes the template from db, the store of a fresh server that has just
// become healthy, if none was made or tried yet. A failure only leaves later servers
// migrating their stores themselves.
func noteSQLiteTemplate(db string) {
	sqliteTemplate.mu.Lock()
	defer sqliteTemplate.mu.Unlock()
	if sqliteTemplate.tried {
		return
	}
	sqliteTemplate.tried = true
	sqliteTemplate.db, sqliteTemplate.err = makeSQLiteTemplate(db)
}

// SQLiteTemplateStatus reports whether fresh SQLite-backed servers of this binary start on
// the migrated template (made from its first such server) and, if none could be made, why.
func SQLiteTemplateStatus() (made bool, err error) {
	sqliteTemplate.mu.Lock()
	defer sqliteTemplate.mu.Unlock()
	return sqliteTemplate.db != nil, sqliteTemplate.err
}

// makeSQLiteTemplate copies db (VACUUM INTO: a consistent copy even from a live store),
// removes the Default experiment from the copy and returns its bytes. It refuses a store
// holding anything else beyond the migrations' rows (alembic_version and the default
// workspace), so a change in what MLflow writes at start shows up as no template, never as
// a template carrying a server's data.
func makeSQLiteTemplate(db string) ([]byte, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(db), "template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "mlflow.db")
	src, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	_, err = src.Exec(`VACUUM INTO ?`, out)
	src.Close()
	if err != nil {
		return nil, fmt.Errorf("copy %s: %v", db, err)
	}
	c, err := sql.Open("sqlite", "file:"+out)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Exec(`DELETE FROM experiments WHERE experiment_id = 0 AND name = 'Default'`); err != nil {
		return nil, err
	}
	rows, err := c.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return nil, err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		tables = append(tables, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, tb := range tables {
		var n int
		if err := c.QueryRow(`SELECT count(*) FROM "` + tb + `"`).Scan(&n); err != nil {
			return nil, err
		}
		want := 0
		if tb == "alembic_version" || tb == "workspaces" {
			want = 1
		}
		if n != want {
			return nil, fmt.Errorf("%s: table %s holds %d rows after start, want %d: no template", db, tb, n, want)
		}
	}
	if err := c.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}
