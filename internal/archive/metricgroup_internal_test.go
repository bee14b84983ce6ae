package archive

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/runferry/runferry/internal/testenv"
)

// groupTestRows are the rows of one run in archive order: 300 keys (a key
// index wider than a byte), keys and a run longer than the column index's
// 16 bytes, NaN, infinities and -0 values, negative steps, times of 0
// (stored as null) scattered and a stretch of them longer than a page (a
// page of nulls alone), and keys of one point.
func groupTestRows() []MetricRow {
	run := "memory:" + strings.Repeat("r", 40)
	var rows []MetricRow
	for k := range 300 {
		key := fmt.Sprintf("k%03d", k)
		if k%7 == 0 {
			key = fmt.Sprintf("k%03d/%s", k, strings.Repeat("x", 30))
		}
		n := 1 + (k*37)%500
		switch k {
		case 5:
			n = groupPageRows + 1000 // a page of null times
		case 6:
			n = 3 * groupPageRows
		}
		for i := range n {
			r := MetricRow{Run: run, Key: key, Step: int64(i - 50), Time: 1_700_000_000_000 + int64(i), Value: float64(i) * 0.5}
			switch {
			case k == 5 && i >= 500 && i < 500+groupPageRows+200:
				r.Time = 0
			case i%97 == 3:
				r.Time = 0
			case i%101 == 1:
				r.Value = math.NaN()
			case i%103 == 2:
				r.Value = math.Inf(-1)
			case i%107 == 4:
				r.Value = math.Copysign(0, -1)
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// TestGroupEncoderSameRows encodes the same rows with groupEncoder and with
// parquet-go's writer (NewMetricsTableWriter, what metrics files were
// written with before): both files read back, by parquet-go, to the rows
// given, bit for bit (NaN and -0 included); their schemas, row counts and
// every column's row-group statistics are equal; and every page bound in
// groupEncoder's column index holds the page's values (the offset index
// tells the page's rows).
func TestGroupEncoderSameRows(t *testing.T) {
	rows := groupTestRows()
	ours := encodeGroup(t, rows)
	var theirs bytes.Buffer
	pw := NewMetricsTableWriter(&theirs)
	if _, err := pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	fo, fp := openBytes(t, ours.Bytes()), openBytes(t, theirs.Bytes())
	if !parquet.EqualNodes(fo.Schema(), fp.Schema()) {
		t.Fatalf("schema differs:\n%s\n%s", fo.Schema(), fp.Schema())
	}
	for name, f := range map[string]*parquet.File{"groupEncoder": fo, "parquet-go": fp} {
		got := readRows(t, f)
		if len(got) != len(rows) {
			t.Fatalf("%s: %d rows, want %d", name, len(got), len(rows))
		}
		for i := range rows {
			if !sameRow(got[i], rows[i]) {
				t.Fatalf("%s: row %d = %+v, want %+v", name, i, got[i], rows[i])
			}
		}
	}
	mo, mp := fo.Metadata(), fp.Metadata()
	if mo.NumRows != mp.NumRows || len(mo.RowGroups) != 1 {
		t.Fatalf("rows %d / %d, row groups %d", mo.NumRows, mp.NumRows, len(mo.RowGroups))
	}
	for c := range metricColumns {
		so, sp := mo.RowGroups[0].Columns[c].MetaData.Statistics, mp.RowGroups[0].Columns[c].MetaData.Statistics
		if !bytes.Equal(so.MinValue, sp.MinValue) || !bytes.Equal(so.MaxValue, sp.MaxValue) || so.NullCount != sp.NullCount {
			t.Errorf("column %d statistics: ours %x..%x nulls %d, parquet-go's %x..%x nulls %d", c, so.MinValue, so.MaxValue, so.NullCount, sp.MinValue, sp.MaxValue, sp.NullCount)
		}
	}
	checkColumnIndex(t, fo, rows)
}

// TestGroupRowGroupCopied: a metrics file made of groupEncoder's row
// groups, copied by copyRowGroup as writeMetricsParallel does, is read
// back whole (two row groups) by pyarrow and by DuckDB with the rows of a
// file parquet-go wrote (values compared bit for bit).
func TestGroupRowGroupCopied(t *testing.T) {
	rows := groupTestRows()
	dir := t.TempDir()
	st := newDirStore(dir)
	tf, err := createTableFile[MetricRow](st, TableMetrics, "memory:x", 1, metricRowGroup)
	if err != nil {
		t.Fatal(err)
	}
	half := len(rows) / 2 // within a key: each row group has its own dictionaries
	for _, part := range [][]MetricRow{rows[:half], rows[half:]} {
		b := encodeGroup(t, part)
		if err := copyRowGroup(tf, b); err != nil {
			t.Fatal(err)
		}
	}
	e, err := tf.Close()
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, stagingDir, e.Path)
	theirs := filepath.Join(dir, "theirs.parquet")
	var buf bytes.Buffer
	pw := NewMetricsTableWriter(&buf)
	if _, err := pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(theirs, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f := openBytes(t, mustRead(t, ours))
	if n := len(f.RowGroups()); n != 2 {
		t.Fatalf("%d row groups", n)
	}
	out := runPythonIn(t, dir, `
import sys, pyarrow.parquet as pq, duckdb
ours, theirs = sys.argv[1] + "/`+filepath.ToSlash(filepath.Join(stagingDir, e.Path))+`", sys.argv[1] + "/theirs.parquet"
def rows(t):
    d = t.to_pydict()
    import struct
    return list(zip(d["run"], d["key"], d["step"], d["time"], [struct.pack("<d", v) for v in d["value"]]))
a, b = pq.read_table(ours), pq.read_table(theirs)
print("pyarrow", a.schema == b.schema, a.num_rows, rows(a) == rows(b))
q = "SELECT run, key, step, time, value::DOUBLE FROM read_parquet('%s') ORDER BY key, step, time NULLS FIRST, value"
c = duckdb.connect()
x, y = c.execute(q % ours).fetchall(), c.execute(q % theirs).fetchall()
same = len(x) == len(y) and all(repr(p) == repr(q) for p, q in zip(x, y))
print("duckdb", len(x), same)
`)
	want := fmt.Sprintf("pyarrow True %d True\nduckdb %d True\n", len(rows), len(rows))
	if string(out) != want {
		t.Fatalf("readers printed\n%s\nwant\n%s", out, want)
	}
}

// runPythonIn runs src with the test venv's Python (pyarrow, DuckDB),
// dir as its argument, and returns what it printed.
func runPythonIn(t *testing.T, dir, src string) []byte {
	t.Helper()
	script := filepath.Join(t.TempDir(), "read.py")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Python(t), script, dir).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python: %v\n%s", err, stderr)
	}
	return out
}

func encodeGroup(t *testing.T, rows []MetricRow) *bytes.Buffer {
	t.Helper()
	e := &groupEncoder{keyIdx: map[string]int32{}}
	e.reset(rows[0].Run)
	var buf bytes.Buffer
	for i := 0; i < len(rows); {
		j := i
		var pts []pt
		for j < len(rows) && rows[j].Key == rows[i].Key && j-i < 1000 {
			pts = append(pts, pt{rows[j].Step, rows[j].Time, rows[j].Value})
			j++
		}
		if err := e.add(rows[i].Key, pts); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	if err := e.encode(&buf); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func openBytes(t *testing.T, b []byte) *parquet.File {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readRows(t *testing.T, f *parquet.File) []MetricRow {
	t.Helper()
	r := parquet.NewGenericReader[MetricRow](f)
	defer r.Close()
	out := make([]MetricRow, f.NumRows())
	n, err := r.Read(out)
	if n != len(out) {
		t.Fatalf("read %d of %d rows: %v", n, len(out), err)
	}
	return out
}

func sameRow(a, b MetricRow) bool {
	return a.Run == b.Run && a.Key == b.Key && a.Step == b.Step && a.Time == b.Time &&
		math.Float64bits(a.Value) == math.Float64bits(b.Value)
}

// checkColumnIndex checks, for every column and page of f's first row
// group, that the column index's bounds hold the page's non-null values
// (byte arrays as truncated prefixes), that a null page holds nulls alone,
// and that the null counts are right.
func checkColumnIndex(t *testing.T, f *parquet.File, rows []MetricRow) {
	t.Helper()
	rg := f.RowGroups()[0]
	for c, chunk := range rg.ColumnChunks() {
		ci, err := chunk.ColumnIndex()
		if err != nil {
			t.Fatal(err)
		}
		oi, err := chunk.OffsetIndex()
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumPages() != oi.NumPages() || ci.NumPages() < 2 {
			t.Fatalf("column %d: %d pages in the column index, %d in the offset index", c, ci.NumPages(), oi.NumPages())
		}
		for p := range ci.NumPages() {
			lo := oi.FirstRowIndex(p)
			hi := int64(len(rows))
			if p+1 < oi.NumPages() {
				hi = oi.FirstRowIndex(p + 1)
			}
			var nulls int64
			for _, r := range rows[lo:hi] {
				v, null := rowValue(c, r)
				if null {
					nulls++
					continue
				}
				if c == 4 && math.IsNaN(r.Value) {
					continue // not bounded
				}
				if ci.NullPage(p) {
					t.Fatalf("column %d page %d: a null page holds %v", c, p, v)
				}
				cmp := chunk.Type().Compare
				if cmp(v, ci.MinValue(p)) < 0 && !prefixOf(ci.MinValue(p), v) || cmp(v, ci.MaxValue(p)) > 0 {
					t.Fatalf("column %d page %d: %v outside %v..%v", c, p, v, ci.MinValue(p), ci.MaxValue(p))
				}
			}
			if got := ci.NullCount(p); got != nulls {
				t.Fatalf("column %d page %d: null count %d, want %d", c, p, got, nulls)
			}
		}
	}
}

func prefixOf(p, v parquet.Value) bool {
	return p.Kind() == parquet.ByteArray && bytes.HasPrefix(v.ByteArray(), p.ByteArray())
}

// rowValue is column c of r as a parquet.Value, and whether it is null.
func rowValue(c int, r MetricRow) (parquet.Value, bool) {
	switch c {
	case 0:
		return parquet.ByteArrayValue([]byte(r.Run)), false
	case 1:
		return parquet.ByteArrayValue([]byte(r.Key)), false
	case 2:
		return parquet.Int64Value(r.Step), false
	case 3:
		return parquet.Int64Value(r.Time), r.Time == 0
	}
	return parquet.DoubleValue(r.Value), false
}
