package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/internal/testenv"
	sinksall "github.com/runferry/runferry/sinks/all"
)

// TestSQLRoundTrip: the W&B fixtures go to PostgreSQL, then to a Parquet
// archive, then to MariaDB (its password in MYSQL_PWD), then to MLflow,
// each hop through the CLI with check clean after it, and the W&B runs
// checked against MLflow at the end. No output, report or ledger holds
// the password.
func TestSQLRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pg := testenv.SharedPostgres(t).CreateDatabase(t, "cli_roundtrip")
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	maria := m.CreateDatabase(t, "cli_roundtrip")
	mlflow := "mlflow+" + testenv.SharedMLflow(t).URL + "?experiment-prefix=sql-rt-"
	archive := "parquet:" + filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")

	var printed strings.Builder
	hops := [][2]string{{fixtures, pg}, {pg, archive}, {archive, maria}, {maria, mlflow}}
	for i, hop := range hops {
		report := filepath.Join(dir, fmt.Sprintf("report-%d.json", i))
		code, out, errOut := runCLI(t, "copy", "--accept-gaps", hop[0], hop[1], "--state", ledger, "--report", report)
		printed.WriteString(out + errOut)
		if code != 0 || !strings.Contains(out, "copied 6 runs (142 points") {
			t.Fatalf("copy %s -> %s: exit %d\n%s\n%s", hop[0], hop[1], code, out, errOut)
		}
		code, out, errOut = runCLI(t, "check", hop[0], hop[1])
		printed.WriteString(out + errOut)
		if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
			t.Fatalf("check %s %s: exit %d\n%s\n%s", hop[0], hop[1], code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, "check", fixtures, mlflow)
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check W&B against MLflow after four hops: exit %d\n%s\n%s", code, out, errOut)
	}
	// A second pass of a hop into a database writes nothing again.
	code, out, _ = runCLI(t, "copy", "--accept-gaps", archive, maria, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 0 runs") || !strings.Contains(out, "6 unchanged") {
		t.Fatalf("second copy into MariaDB: exit %d\n%s", code, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "report-*.json"))
	for _, f := range append(files, ledger) {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), m.Password) {
			t.Errorf("%s holds the MariaDB password", f)
		}
	}
	if strings.Contains(printed.String(), m.Password) {
		t.Errorf("the output shows the MariaDB password")
	}
}

// TestSQLPasswordRefusedAndNeverPrinted: a password in a database
// location is refused (exit 2) with the variable to use, without showing
// it; a wrong password from the environment fails at start (exit 1) with
// the server's error, without showing it either.
func TestSQLPasswordRefusedAndNeverPrinted(t *testing.T) {
	const secret = "pl4nted-DB-pw"
	for _, tt := range []struct{ loc, env string }{
		{"postgres://alice:" + secret + "@127.0.0.1:1/runs", "PGPASSWORD"},
		{"postgresql://alice:" + secret + "@127.0.0.1:1/runs", "PGPASSWORD"},
		{"mysql://alice:" + secret + "@127.0.0.1:1/runs", "MYSQL_PWD"},
		{"postgres://alice@127.0.0.1:1/runs?password=" + secret, "PGPASSWORD"},
	} {
		for _, args := range [][]string{{"copy", "--accept-gaps", fixtures, tt.loc}, {"ls", tt.loc}} {
			code, out, errOut := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(errOut, tt.env) || !strings.Contains(errOut, "refused") {
				t.Errorf("%v: exit %d, stderr %q; want exit %d naming %s", args, code, errOut, exitUsage, tt.env)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("%v printed the password: %q %q", args, out, errOut)
			}
		}
	}
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", secret)
	loc := m.CreateDatabase(t, "cli_wrong_pw")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, loc)
	if code != exitFatal || !strings.Contains(errOut, "Access denied") {
		t.Errorf("wrong MYSQL_PWD: exit %d, stderr %q; want exit %d with the server's refusal", code, errOut, exitFatal)
	}
	if strings.Contains(out+errOut, secret) {
		t.Errorf("wrong MYSQL_PWD: the output shows it: %q %q", out, errOut)
	}
}

// TestSQLKillDuringCopyThenResume: the real binary is SIGKILLed at seeded
// random moments while copying the W&B fixtures into PostgreSQL, then
// into MariaDB, then into SQLite. After each kill the database holds only whole runs (check
// finds no difference other than missing runs and experiments); a final re-run ends with
// check clean and no run or point doubled.
func TestSQLKillDuringCopyThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	dir := t.TempDir()
	bin := testenv.BuildOnce(t, ".")
	rng := testenv.Rand(t)
	pgc := testenv.SharedPostgres(t)
	pgDst := pgc.CreateDatabase(t, "cli_kill")
	killAndResume(t, bin, rng, "PostgreSQL", pgc.CreateDatabase(t, "cli_kill_probe"), pgDst, func() (*sql.DB, error) { return sql.Open("pgx", pgDst) })
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	mDst := m.CreateDatabase(t, "cli_kill")
	mDSN := m.DSN(t, mDst)
	killAndResume(t, bin, rng, "MariaDB", m.CreateDatabase(t, "cli_kill_probe"), mDst, func() (*sql.DB, error) { return sql.Open("mysql", mDSN) })
	file := filepath.Join(dir, "kill.db")
	killAndResume(t, bin, rng, "SQLite", "sqlite:"+filepath.Join(dir, "probe.db"), "sqlite:"+file, func() (*sql.DB, error) { return sql.Open("sqlite", file) })
}

func killAndResume(t *testing.T, bin string, rng *rand.Rand, what, probe, dst string, open func() (*sql.DB, error)) {
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	// The schema is created first, so that the probe times a copy as the
	// kills meet it, not one that spends most of its time in DDL.
	for _, raw := range []string{probe, dst} {
		loc, err := sinksall.Sinks().Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlstore.Open(context.Background(), loc, sqlstore.ForWriting)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	start := time.Now()
	if out, err := exec.Command(bin, "copy", "--accept-gaps", fixtures, probe, "--no-state", "-q").CombinedOutput(); err != nil {
		t.Fatalf("%s: probe copy: %v\n%s", what, err, out)
	}
	full := time.Since(start)
	kills := 0
	var present []int // runs the database held after each kill
	for i := range 6 {
		cmd := exec.Command(bin, "copy", "--accept-gaps", fixtures, dst, "--state", ledger, "-q", "--concurrency", "2")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(full))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err == nil {
			kills++
		}
		_ = cmd.Wait()
		out, err := exec.Command(bin, "check", fixtures, dst).CombinedOutput()
		if c := exitCode(err); c != 0 && c != exitDifferences {
			t.Fatalf("%s: check after kill %d: exit %d\n%s", what, i, c, out)
		}
		present = append(present, 6-strings.Count(string(out), "missing run"))
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "wandb:") && !strings.Contains(line, ": missing run: ") && !strings.Contains(line, ": missing experiment: ") {
				t.Fatalf("%s: after kill %d the database holds a partial run: %s\n%s", what, i, line, out)
			}
		}
	}
	out, err := exec.Command(bin, "copy", "--accept-gaps", fixtures, dst, "--state", ledger, "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: final copy: %v\n%s", what, err, out)
	}
	out, err = exec.Command(bin, "check", fixtures, dst).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "6 match, 0 differences") {
		t.Fatalf("%s: check after %d kills: %v\n%s", what, kills, err, out)
	}
	db, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var runs, points, doubled int
	if err := db.QueryRow("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM metrics), "+
		"(SELECT count(*) FROM (SELECT run_id, name, step, time_ms, count(*) FROM metrics GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d)").Scan(&runs, &points, &doubled); err != nil {
		t.Fatal(err)
	}
	if runs != 6 || points != 142 || doubled != 0 {
		t.Fatalf("%s: after %d kills and a re-run: %d runs, %d points, %d doubled points; want 6 runs, 142 points, none doubled", what, kills, runs, points, doubled)
	}
	t.Logf("%s: %d kills within %v each, leaving %v runs; %s", what, kills, full, present, strings.TrimSpace(string(out)))
}

// TestSQLDryRunWritesNothing: a dry run into a SQLite file that does not
// exist yet plans every run and leaves no file behind; into an empty
// PostgreSQL database it creates no schema. The real copy then creates
// both.
func TestSQLDryRunWritesNothing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "new.db")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "sqlite:"+file, "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run, nothing written") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the dry run left %s behind (%v)", file, err)
	}
	if _, err := os.Stat(file + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("the dry run left a WAL file behind (%v)", err)
	}
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", fixtures, "sqlite:"+filepath.Join(t.TempDir(), "missing", "new.db"))
	if code != exitFatal || !strings.Contains(errOut, "no folder") {
		t.Errorf("a SQLite file in a missing folder: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "sqlite:"+file); code != 0 {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the copy made no database: %v", err)
	}

	pg := testenv.SharedPostgres(t).CreateDatabase(t, "cli_dryrun")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, pg, "--dry-run"); code != 0 {
		t.Fatalf("dry run into PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	db, err := sql.Open("pgx", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()").Scan(&n); err != nil || n != 0 {
		t.Errorf("after a dry run PostgreSQL holds %d tables (%v), want none", n, err)
	}
}
