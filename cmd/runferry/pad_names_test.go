package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// padNamesPy has the real wandb SDK (offline) log one run whose names
// MySQL's tables of schema versions 1-3 could not hold: metric keys,
// config keys and tags differing only by trailing spaces, two metric keys
// of 801 characters alike in their first 800, one of 1000 two-byte
// characters, a config key of 900 characters, and files "f.txt" and
// "f.txt " in the run's folder. Usage: DIR.
var padNamesPy = wandbOfflinePy("padnames", `
os.chdir(sys.argv[1])
long_a, long_b, wide = "k" * 800 + "a", "k" * 800 + "b", "é" * 1000
run = wandb.init(id="padded", name="padded", dir=".", tags=["x", "x "],
                 config={"lr": 0.1, "lr ": 0.2, "c" * 900: 3},
                 settings=wandb.Settings(x_disable_stats=True))
for s in range(3):
    run.log({"loss": 1.0 + s, "loss ": 10.0 + s, long_a: 100.0 + s, long_b: 1000.0 + s, wide: 5.0 + s}, step=s)
for name, body in (("f.txt", "no space"), ("f.txt ", "one space")):
    with open(os.path.join(run.dir, name), "w") as f:
        f.write(body)
run.finish()
`)

// TestPaddedAndLongNamesRoundTrip: the run of padNamesPy goes W&B folder
// -> Parquet archive -> MariaDB -> a second archive, and from the first
// archive into PostgreSQL and SQLite, through the CLI: every copy exits 0
// with the run copied, check is clean at every hop and between the two
// archives, and MariaDB holds each metric key apart at its full length
// with its 3 points. Before schema version 4 the copy into MariaDB failed
// the run (exit 3: "Data too long for column 'name'", and without the long
// names "Duplicate entry ... for key 'PRIMARY'").
func TestPaddedAndLongNamesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	runWandbPy(t, padNamesPy, dir)
	first, second := "parquet:"+filepath.Join(dir, "first"), "parquet:"+filepath.Join(dir, "second")
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	maria := m.CreateDatabase(t, "pad_roundtrip")
	pg := testenv.SharedPostgres(t).CreateDatabase(t, "pad_roundtrip")
	lite := "sqlite:" + filepath.Join(dir, "runs.db")
	for _, hop := range [][2]string{{"wandb:" + dir + "?entity=ent", first}, {first, maria}, {maria, second}, {first, pg}, {first, lite}} {
		code, out, errOut := runCLI(t, "copy", hop[0], hop[1], "--state", filepath.Join(dir, "ledger.db"), "--retries", "0")
		if code != 0 || !strings.Contains(out, "copied 1 run") {
			t.Fatalf("copy %s -> %s: exit %d, want 0\n%s\n%s", hop[0], hop[1], code, out, errOut)
		}
		code, out, errOut = runCLI(t, "check", hop[0], hop[1])
		if code != 0 || !strings.Contains(out, "1 match, 0 differences") {
			t.Fatalf("check %s %s: exit %d\n%s\n%s", hop[0], hop[1], code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, "check", first, second)
	if code != 0 || !strings.Contains(out, "1 match, 0 differences") {
		t.Errorf("check of the two archives: exit %d\n%s\n%s", code, out, errOut)
	}

	db, err := sql.Open("mysql", m.DSN(t, maria))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name, COUNT(*) FROM metrics WHERE name NOT LIKE '\\_%' AND name NOT LIKE 'system/%' GROUP BY name_hash, name")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		got[name] = n
	}
	rows.Close()
	for _, k := range []string{"loss", "loss ", strings.Repeat("k", 800) + "a", strings.Repeat("k", 800) + "b", strings.Repeat("é", 1000)} {
		if got[k] != 3 {
			t.Errorf("MariaDB holds %d points under the key %.12q (%d characters), want 3", got[k], k, len([]rune(k)))
		}
	}
	if len(got) != 5 {
		t.Errorf("MariaDB holds %d model metric keys, want 5", len(got))
	}
	var labels, files int
	if err := db.QueryRow("SELECT (SELECT COUNT(*) FROM labels WHERE label IN ('x', 'x ')), (SELECT COUNT(*) FROM files WHERE path IN ('f.txt', 'f.txt '))").Scan(&labels, &files); err != nil {
		t.Fatal(err)
	}
	if labels != 2 || files != 2 {
		t.Errorf("MariaDB holds %d of the labels x and \"x \", %d of the files f.txt and \"f.txt \"; want 2 and 2", labels, files)
	}
}
