package archive

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/runferry/runferry/internal/testenv"
)

// TestEmptyViewsMatchTheTablesFiles checks current.sql's view of a table
// without files against what DuckDB reads from a file of that table: for
// every table, a one-row file written with the table's row type and the
// archive's writer settings, and the empty view, have the same columns in
// the same order with the same DuckDB types. It also checks that every
// table has a view in the current.sql of an archive holding no file.
func TestEmptyViewsMatchTheTablesFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tb := range Tables {
		row, ok := tableRows[tb]
		if !ok {
			t.Fatalf("table %s has no row type in tableRows", tb)
		}
		f, err := os.Create(filepath.Join(dir, tb+".parquet"))
		if err != nil {
			t.Fatal(err)
		}
		w := parquet.NewWriter(f, append(writerOptions(otherRowGroup), parquet.SchemaOf(row))...)
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	sql := currentSQL(&Manifest{})
	if err := os.WriteFile(filepath.Join(dir, "current.sql"), []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `
import json, sys, duckdb
d, tables = sys.argv[1], json.loads(sys.argv[2])
con = duckdb.connect()
con.execute(open(d + "/current.sql").read())
out = {}
for t in tables:
    f = [list(r[:2]) for r in con.execute("describe select * from read_parquet('%s/%s.parquet')" % (d, t)).fetchall()]
    v = [list(r[:2]) for r in con.execute('describe "%s"' % t).fetchall()]
    n = con.execute('select count(*) from "%s"' % t).fetchone()[0]
    out[t] = [f, v, n]
print(json.dumps(out))
`
	tj, _ := json.Marshal(Tables)
	cmd := exec.Command(testenv.Python(t), "-c", script, dir, string(tj))
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, sql)
	}
	var got map[string][3]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, tb := range Tables {
		g := got[tb]
		if string(g[0]) != string(g[1]) {
			t.Errorf("%s: a file has columns %s, the empty view %s", tb, g[0], g[1])
		}
		if string(g[2]) != "0" {
			t.Errorf("%s: the empty view has %s rows", tb, g[2])
		}
	}
}
