package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
)

// TestSQLPasswordFromPGPASSWORD: against a PostgreSQL role that must give a
// password (scram-sha-256 in pg_hba.conf for that role alone; the test
// cluster trusts every other), a copy with the password in PGPASSWORD
// succeeds and check is clean, and no output, report or ledger holds the
// password; without PGPASSWORD, or with a wrong one, the copy fails at
// start (exit 1) with the server's refusal, showing neither.
func TestSQLPasswordFromPGPASSWORD(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	const role, secret, wrong = "rf_pw_user", "pg-S3cret-planted", "pg-Wr0ng-planted"
	admin, err := sql.Open("pgx", pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	dbName := "pw_" + strconv.Itoa(os.Getpid())
	for _, q := range []string{
		"DROP DATABASE IF EXISTS " + dbName,
		"DROP ROLE IF EXISTS " + role,
		"CREATE ROLE " + role + " LOGIN PASSWORD '" + secret + "'",
		"CREATE DATABASE " + dbName + " OWNER " + role,
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	hba := filepath.Join(pg.Dir, "data", "pg_hba.conf")
	before, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	line := "host all " + role + " 127.0.0.1/32 scram-sha-256\n" // the first line that matches wins
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
	loc := "postgres://" + role + "@127.0.0.1:" + strconv.Itoa(pg.Port) + "/" + dbName + "?sslmode=disable"
	// The postmaster reloads pg_hba.conf on the signal, a moment later:
	// wait until the role is asked for its password.
	t.Setenv("PGPASSWORD", "")
	os.Unsetenv("PGPASSWORD")
	for i := 0; ; i++ {
		code, _, errOut := runCLI(t, "ls", loc)
		if code != 0 && strings.Contains(errOut, "password") {
			break
		}
		if i == 100 {
			t.Fatalf("the role is not asked for a password after the reload: exit %d, %s", code, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}

	dir := t.TempDir()
	report, ledger := filepath.Join(dir, "report.json"), filepath.Join(dir, "ledger.db")
	var printed strings.Builder
	t.Setenv("PGPASSWORD", wrong)
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, loc, "--state", ledger)
	printed.WriteString(out + errOut)
	if code != exitFatal || !strings.Contains(errOut, "password authentication failed") {
		t.Errorf("wrong PGPASSWORD: exit %d, stderr %q; want exit %d with the server's refusal", code, errOut, exitFatal)
	}

	t.Setenv("PGPASSWORD", secret)
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", fixtures, loc, "--state", ledger, "--report", report)
	printed.WriteString(out + errOut)
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("copy with PGPASSWORD: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "check", fixtures, loc)
	printed.WriteString(out + errOut)
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check with PGPASSWORD: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, f := range []string{report, ledger} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds the password", f)
		}
	}
	for _, s := range []string{secret, wrong} {
		if strings.Contains(printed.String(), s) {
			t.Errorf("the output shows %q", s)
		}
	}
}
