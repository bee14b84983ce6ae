package wandbcloud

import (
	"math"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/runferry/runferry/internal/wandbfile"
)

// TestFirstStepAsFirstRow: the step a downloaded export is sorted by
// (firstStep, read from the _step column alone in a flat numeric file) is
// the step wandbfile.ValueInt takes from the file's first row as rows
// decodes it, for integer, float, double, dictionary-encoded and optional
// steps, a first step that is not an integer or is null (0, as
// ConvertValues has it), a file of several row groups, a file of no
// rows, and a file that is not flat (read from its first row).
func TestFirstStepAsFirstRow(t *testing.T) {
	dict := func(n parquet.Node) parquet.Node { return parquet.Encoded(n, &parquet.RLEDictionary) }
	x := parquet.Optional(parquet.Leaf(parquet.DoubleType))
	cases := []struct {
		name  string
		step  parquet.Node
		other parquet.Node // the other column; nil: a double
		first any          // the first row's step value; nil: null
		rows  int
		flat  bool
	}{
		{"int64", parquet.Leaf(parquet.Int64Type), nil, int64(17), 200, true},
		{"int32", parquet.Leaf(parquet.Int32Type), nil, int32(-3), 200, true},
		{"double", parquet.Leaf(parquet.DoubleType), nil, 42.0, 200, true},
		{"float", parquet.Leaf(parquet.FloatType), nil, float32(8), 10, true},
		{"double, not an integer", parquet.Leaf(parquet.DoubleType), nil, 13.5, 200, true},
		{"dictionary", dict(parquet.Leaf(parquet.Int64Type)), nil, int64(1000), 200, true},
		{"optional, null first", parquet.Optional(parquet.Leaf(parquet.DoubleType)), nil, nil, 200, true},
		{"optional", parquet.Optional(parquet.Leaf(parquet.Int64Type)), nil, int64(9), 1, true},
		{"no rows", parquet.Leaf(parquet.Int64Type), nil, int64(0), 0, true},
		{"text column: not flat", parquet.Leaf(parquet.Int64Type), parquet.Optional(parquet.String()), int64(23), 200, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			other := c.other
			if other == nil {
				other = x
			}
			sch := parquet.NewSchema("history", parquet.Group{"_step": c.step, "x": other})
			var rows []parquet.Row
			for i := range c.rows {
				pr := make(parquet.Row, 2)
				var v parquet.Value
				switch f := c.first.(type) {
				case nil:
					v = parquet.NullValue()
					if i > 0 {
						v = parquet.DoubleValue(float64(i))
					}
				case int64:
					v = parquet.Int64Value(f + int64(i)*5)
				case int32:
					v = parquet.Int32Value(f + int32(i)*5)
				case float32:
					v = parquet.FloatValue(f + float32(i))
				case float64:
					v = parquet.DoubleValue(f + float64(i))
				}
				def := 0
				if c.step.Optional() && !v.IsNull() {
					def = 1
				}
				pr[0] = v.Level(0, def, 0)
				if c.other != nil {
					pr[1] = parquet.ByteArrayValue([]byte("s")).Level(0, 1, 1)
				} else {
					pr[1] = parquet.DoubleValue(float64(i)).Level(0, 1, 1)
				}
				rows = append(rows, pr)
			}
			f := writeExport(t, sch, rows) // row groups of 64 rows
			if got := flatNumeric(f.pf.Schema()) != nil; got != c.flat {
				t.Fatalf("flat: %v, want %v", got, c.flat)
			}
			want := int64(math.MaxInt64)
			err := f.rows(func(m map[string]any) error {
				want, _ = wandbfile.ValueInt(m["_step"])
				return errStop
			})
			if err != nil && err != errStop {
				t.Fatal(err)
			}
			got, err := f.firstStep()
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("firstStep %d, the first row's step %d", got, want)
			}
			if c.rows == 0 && got != math.MaxInt64 {
				t.Fatalf("a file of no rows: firstStep %d", got)
			}
		})
	}
}
