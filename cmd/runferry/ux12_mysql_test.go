package main

import (
	"database/sql"
	"slices"
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
// and only check found it. runferry then set strict mode on its own
// connections (the run failed, named, exit 3); since schema version 4
// (pad) names are LONGTEXT keyed on their hash, so the run arrives whole:
// exit 0, both keys of 3 points each at their full length, check clean.
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
	if code != 0 || !strings.Contains(out, "copied 1 run") {
		t.Errorf("copy: exit %d, want 0, the run copied\n%s\n%s", code, out, errOut)
	}
	rows, err := db.Query("SELECT CHAR_LENGTH(name), COUNT(*) FROM metrics GROUP BY name ORDER BY 1, 2")
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]int
	for rows.Next() {
		var l, n int
		if err := rows.Scan(&l, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, [2]int{l, n})
	}
	rows.Close()
	if want := [][2]int{{4, 3}, {701, 3}, {701, 3}}; !slices.Equal(got, want) {
		t.Errorf("metric keys (length, points): %v, want %v (no key cut or merged)", got, want)
	}
	code, out, errOut = runCLI(t, "check", src, loc)
	if code != 0 {
		t.Errorf("check: exit %d, want 0\n%s\n%s", code, out, errOut)
	}
}
