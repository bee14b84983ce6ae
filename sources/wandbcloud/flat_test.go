package wandbcloud

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestFlatRowsConvertAsRows: an export file of flat numeric columns is
// converted straight from its columns (flatNumeric, flatColumn) into
// exactly the rows the generic path (rows, then convertRow) gives:
// integer, float, double and boolean columns, nulls, NaN and infinities,
// _runtime and _wandb left out, another key starting with "_" kept,
// columns not in key order, a non-integer step, a column null in a whole
// row group; written in row groups of 64 rows, and also with dictionary
// encodings, version 1 data pages and several pages a row group, an
// integer step and a required metric column (the numeric columns' pages
// then decoded from their typed arrays, which the test checks); and a file
// with a text column or a boolean step is left to the generic path.
func TestFlatRowsConvertAsRows(t *testing.T) {
	dict := func(n parquet.Node) parquet.Node { return parquet.Encoded(n, &parquet.RLEDictionary) }
	layouts := []struct {
		name  string
		group parquet.Group
		opts  []parquet.WriterOption
	}{
		{"plain", parquet.Group{
			"_step":      parquet.Leaf(parquet.DoubleType),
			"_timestamp": parquet.Optional(parquet.Leaf(parquet.DoubleType)),
			"_runtime":   parquet.Optional(parquet.Leaf(parquet.DoubleType)),
			"_wandb":     parquet.Optional(parquet.Leaf(parquet.BooleanType)),
			"_extra":     parquet.Optional(parquet.Leaf(parquet.Int64Type)),
			"zeta":       parquet.Optional(parquet.Leaf(parquet.DoubleType)),
			"acc":        parquet.Optional(parquet.Leaf(parquet.FloatType)),
			"n":          parquet.Optional(parquet.Leaf(parquet.Int32Type)),
			"ok":         parquet.Optional(parquet.Leaf(parquet.BooleanType)),
			"gap":        parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		}, nil},
		{"dictionary, v1 pages, small pages", parquet.Group{
			"_step":      dict(parquet.Leaf(parquet.Int64Type)),
			"_timestamp": parquet.Optional(dict(parquet.Leaf(parquet.DoubleType))),
			"_runtime":   parquet.Optional(parquet.Leaf(parquet.DoubleType)),
			"_wandb":     parquet.Optional(parquet.Leaf(parquet.BooleanType)),
			"_extra":     parquet.Optional(dict(parquet.Leaf(parquet.Int64Type))),
			"zeta":       parquet.Optional(dict(parquet.Leaf(parquet.DoubleType))),
			"acc":        parquet.Optional(dict(parquet.Leaf(parquet.FloatType))),
			"n":          dict(parquet.Leaf(parquet.Int32Type)),
			"ok":         parquet.Optional(parquet.Leaf(parquet.BooleanType)),
			"gap":        parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		}, []parquet.WriterOption{parquet.DataPageVersion(1), parquet.PageBufferSize(100)}},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			sch := parquet.NewSchema("history", l.group)
			f := writeExport(t, sch, flatTestRows(sch), l.opts...)
			fl := flatNumeric(f.pf.Schema())
			if fl == nil {
				t.Fatal("a file of numeric columns is not taken as flat")
			}
			var flatGot, generic []row
			if err := f.convertedRows(func(r row) error {
				// The points are fn's only until it returns.
				r.points = slices.Clone(r.points)
				flatGot = append(flatGot, r)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := f.rows(func(m map[string]any) error { generic = append(generic, convertRow(m)); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(generic) != 300 || !reflect.DeepEqual(norm(flatGot), norm(generic)) {
				for i := range min(len(flatGot), len(generic)) {
					if !reflect.DeepEqual(norm(flatGot[i:i+1]), norm(generic[i:i+1])) {
						t.Fatalf("row %d: flat path %v, generic path %v", i, flatGot[i], generic[i])
					}
				}
				t.Fatalf("flat path %d rows, generic path %d", len(flatGot), len(generic))
			}
			// NaN != NaN for DeepEqual: norm turned them into a marker;
			// check the flat path kept them.
			nan := 0
			for _, r := range flatGot {
				for _, p := range r.points {
					if math.IsNaN(p.Value) {
						nan++
					}
				}
			}
			if nan == 0 {
				t.Fatal("no NaN point came through")
			}
			// Every page of a numeric column is decoded from its
			// typed arrays, not value by value.
			fields := f.pf.Schema().Fields()
			pages := 0
			for _, rg := range f.pf.RowGroups() {
				for c, chunk := range rg.ColumnChunks() {
					if fields[c].Type().Kind() == parquet.Boolean {
						continue
					}
					col := &flatColumn{index: c, isInt: fields[c].Type().Kind() == parquet.Int32 || fields[c].Type().Kind() == parquet.Int64}
					if fields[c].Optional() {
						col.maxDef = 1
					}
					ps := chunk.Pages()
					for {
						p, err := ps.ReadPage()
						if err != nil {
							break
						}
						pages++
						n := int(p.NumRows())
						col.pnum, col.pnull, col.pints = make([]float64, n), make([]bool, n), make([]int64, n)
						if !col.loadTyped(p, n) {
							t.Errorf("column %s: a page of %d rows not decoded from its typed arrays (dictionary %v)", fields[c].Name(), n, p.Dictionary() != nil)
						}
					}
					ps.Close()
				}
			}
			if pages == 0 {
				t.Fatal("no pages")
			}
		})
	}

	for name, g := range map[string]parquet.Group{
		"text column":  {"_step": parquet.Leaf(parquet.Int64Type), "s": parquet.Optional(parquet.String())},
		"boolean step": {"_step": parquet.Leaf(parquet.BooleanType), "x": parquet.Optional(parquet.Leaf(parquet.DoubleType))},
		"no step":      {"x": parquet.Optional(parquet.Leaf(parquet.DoubleType))},
		"json column":  {"_step": parquet.Leaf(parquet.Int64Type), "j": parquet.Optional(parquet.JSON())},
	} {
		if flatNumeric(parquet.NewSchema("history", g)) != nil {
			t.Errorf("%s: taken as flat", name)
		}
	}
}

// flatTestRows are the 300 rows of TestFlatRowsConvertAsRows in schema sch.
func flatTestRows(sch *parquet.Schema) []parquet.Row {
	cols := sch.Columns()
	var rows []parquet.Row
	for i := range 300 {
		pr := make(parquet.Row, len(cols))
		for c, path := range cols {
			leaf, _ := sch.Lookup(path...)
			def := leaf.MaxDefinitionLevel
			var v parquet.Value
			switch path[0] {
			case "_step":
				if leaf.Node.Type().Kind() == parquet.Int64 {
					pr[c] = parquet.Int64Value(int64(i*2)).Level(0, 0, c)
					continue
				}
				st := float64(i * 2)
				if i == 7 {
					st = 13.5 // not an integer: step 0, as ConvertValues has it
				}
				pr[c] = parquet.DoubleValue(st).Level(0, 0, c)
				continue
			case "_timestamp":
				v = parquet.DoubleValue(1.7e9 + float64(i%50)/3)
			case "_runtime":
				v = parquet.DoubleValue(float64(i))
			case "_wandb":
				v = parquet.BooleanValue(true)
			case "_extra":
				v = parquet.Int64Value(int64(i % 9 * 3))
			case "zeta":
				v = parquet.DoubleValue([]float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.5, 1e300}[i%5])
			case "acc":
				v = parquet.FloatValue(float32(i%11) / 7)
			case "n":
				v = parquet.Int32Value(int32(-i))
			case "ok":
				v = parquet.BooleanValue(i%2 == 0)
			case "gap":
				v = parquet.DoubleValue(float64(i))
			}
			null := (i+c)%4 == 0 || path[0] == "gap" && i >= 64 && i < 128
			if def > 0 && null {
				pr[c] = parquet.NullValue().Level(0, 0, c)
				continue
			}
			pr[c] = v.Level(0, def, c)
		}
		rows = append(rows, pr)
	}
	return rows
}

// norm replaces NaN values by a marker so that DeepEqual compares them.
func norm(rows []row) []row {
	out := make([]row, len(rows))
	for i, r := range rows {
		out[i] = r
		out[i].points = append(r.points[:0:0], r.points...)
		for j, p := range out[i].points {
			if math.IsNaN(p.Value) {
				out[i].points[j].Value = -12345.678
			}
		}
		if len(out[i].points) == 0 {
			out[i].points = nil
		}
	}
	return out
}

// writeExport writes rows as a parquet export file in a temporary
// directory and opens it as a downloaded export.
func writeExport(t *testing.T, sch *parquet.Schema, rows []parquet.Row, opts ...parquet.WriterOption) *exportFile {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, append([]parquet.WriterOption{sch, parquet.MaxRowsPerRowGroup(64)}, opts...)...)
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.parquet")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	pf, err := parquet.OpenFile(fh, int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return &exportFile{pf: pf}
}
