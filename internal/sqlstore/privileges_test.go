package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
)

// TestPrivilegeErrorsSayWhatToGrant: against PostgreSQL, a role that may
// not read runferry's tables is told so (not "no runferry schema here:
// write to it with runferry first", which sent a reader to write), a role
// that may not create tables is told to grant CREATE or name a schema it
// owns, a ?search_path= naming no schema is told to create it, and a
// role that must give a password, with PGPASSWORD unset, is told that
// PGPASSWORD is not set (the server says only "password authentication
// failed", as for a wrong one).
func TestPrivilegeErrorsSayWhatToGrant(t *testing.T) {
	ctx := context.Background()
	pg := testenv.SharedPostgres(t)
	admin, err := sql.Open("pgx", pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	suffix := strconv.Itoa(os.Getpid())
	owned, bare, db := "rf_owner_"+suffix, "rf_bare_"+suffix, "rf_priv_"+suffix
	for _, q := range []string{
		"CREATE ROLE " + owned + " LOGIN PASSWORD 'owner-pw-planted'",
		"CREATE ROLE " + bare + " LOGIN",
		"CREATE DATABASE " + db + " OWNER " + owned,
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	at := func(role, query string) string {
		return "postgres://" + role + "@127.0.0.1:" + strconv.Itoa(pg.Port) + "/" + db + "?sslmode=disable" + query
	}
	// The owner creates the schema (trust authentication until pg_hba.conf
	// changes below).
	s := mustOpen(t, at(owned, ""), ForWriting)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	// PostgreSQL 15 grants no CREATE on public to others: the bare role
	// may neither read runferry's tables nor create them elsewhere.
	_, err = open(t, at(bare, ""), ForReading)
	if err == nil || !strings.Contains(err.Error(), "may not read runferry's tables") || !strings.Contains(err.Error(), "GRANT SELECT") || strings.Contains(err.Error(), "write to it with runferry first") {
		t.Errorf("reading without SELECT: %v", err)
	}
	other := "rf_priv2_" + suffix
	if _, err := admin.Exec("CREATE DATABASE " + other); err != nil {
		t.Fatal(err)
	}
	w := mustOpen(t, "postgres://"+bare+"@127.0.0.1:"+strconv.Itoa(pg.Port)+"/"+other+"?sslmode=disable", ForWriting)
	if err := w.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "may not create tables") || !strings.Contains(err.Error(), "GRANT CREATE ON SCHEMA") {
		t.Errorf("writing without CREATE: %v", err)
	}
	w = mustOpen(t, at(owned, "&search_path=nosuch"), ForWriting)
	if err := w.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "CREATE SCHEMA") {
		t.Errorf("?search_path= naming no schema: %v", err)
	}

	// The owner must now give a password.
	hba := filepath.Join(pg.Dir, "data", "pg_hba.conf")
	before, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	line := "host all " + owned + " 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(hba, append([]byte(line), before...), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(hba, before, 0o600)
		admin.Exec("SELECT pg_reload_conf()")
	})
	if _, err := admin.Exec("SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", t.TempDir()) // no ~/.pgpass
	t.Setenv(PostgresPasswordEnv, "")
	os.Unsetenv(PostgresPasswordEnv)
	for i := 0; ; i++ {
		_, err = open(t, at(owned, ""), ForReading)
		if err != nil && strings.Contains(err.Error(), "password authentication failed") {
			break
		}
		if i == 100 {
			t.Fatalf("the role is not asked for a password after the reload: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(err.Error(), "PGPASSWORD is not set") {
		t.Errorf("no PGPASSWORD: %v", err)
	}
	t.Setenv(PostgresPasswordEnv, "wrong-pw-planted")
	_, err = open(t, at(owned, ""), ForReading)
	if err == nil || strings.Contains(err.Error(), "is not set") || strings.Contains(err.Error(), "wrong-pw-planted") {
		t.Errorf("a wrong PGPASSWORD: %v", err)
	}
}
