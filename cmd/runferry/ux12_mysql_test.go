package main

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// ux12LongKeysPy has the real wandb SDK (offline) log one run with two
// metric keys of 701 characters alike in their first 700 (MySQL's
// VARCHAR(700) for names) and a short key. Usage: DIR.
var ux12LongKeysPy = wandbOfflinePy("ux12", `
os.chdir(sys.argv[1])
run = wandb.init(id="longkeys", name="long-keys", dir=".", settings=wandb.Settings(x_disable_stats=True))
for s in range(3):
    run.log({"k" * 700 + "1": 1.0 + s, "k" * 700 + "2": 10.0 + s, "loss": 0.5}, step=s)
run.finish()
`)

// TestMySQLNonStrictServerMergesNothing: a MariaDB server whose sql_mode is
// not strict (an empty sql_mode, as older set-ups have it) cut each of two
// 701-character metric keys to 700 characters with a warning only: both
// series became one key of 6 points, the copy exited 0 ("copied 1 run")
// and only check found it. runferry now sets strict mode on its own
// connections: the write fails, the run is named as failed, the copy exits
// 3, check sees the run missing, and the database holds no cut key.
func TestMySQLNonStrictServerMergesNothing(t *testing.T) {
	dir := t.TempDir()
	runWandbPy(t, ux12LongKeysPy, dir)
	src := "wandb:" + dir + "?entity=ent"
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	loc := m.CreateDatabase(t, "ux12_nonstrict")
	db, err := sql.Open("mysql", m.DSN(t, loc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the restore below: cleanups run last first
	// The server's global mode, as a user's server may have it; new
	// connections (runferry's) start with it. Restored at the end.
	var mode string
	if err := db.QueryRow("SELECT @@GLOBAL.sql_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("SET GLOBAL sql_mode = ''"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("SET GLOBAL sql_mode = ?", mode); err != nil {
			t.Errorf("restoring the server's sql_mode %q: %v", mode, err)
		}
	})

	code, out, errOut := runCLI(t, "copy", src, loc, "--no-state", "--retries", "0")
	if code != exitRunsFailed || !strings.Contains(out, "FAILED wandb:ent/ux12/longkeys (long-keys)") ||
		!strings.Contains(out, "Data too long for column 'name'") || !strings.Contains(out, "copied 0 runs") {
		t.Errorf("copy: exit %d, want %d naming the run failed by the key too long\n%s\n%s", code, exitRunsFailed, out, errOut)
	}
	var cut, rows int
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(SUM(CHAR_LENGTH(name) = 700), 0) FROM metrics").Scan(&rows, &cut); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || cut != 0 {
		t.Errorf("the database holds %d metric points, %d of them under a key cut to 700 characters; want none", rows, cut)
	}
	code, out, errOut = runCLI(t, "check", src, loc)
	if code != exitDifferences || !strings.Contains(out, "missing run") {
		t.Errorf("check: exit %d, want %d naming the missing run\n%s\n%s", code, exitDifferences, out, errOut)
	}
}
