package mlflowsql

import (
	"strings"
	"testing"
)

// TestPyFloat: floats are written as Python's json.dumps writes them (the
// expected text is json.dumps of the same list, by MLflow 3.17's Python).
func TestPyFloat(t *testing.T) {
	in := []float64{0.0, 1.0, 0.25, 1e-05, 0.0001, 123456789.0, 1e16, 1.5e-07, -2.5, 0.30000000000000004, 1.2345678901234568e+17, 9999999999999998.0}
	want := "[0.0, 1.0, 0.25, 1e-05, 0.0001, 123456789.0, 1e+16, 1.5e-07, -2.5, 0.30000000000000004, 1.2345678901234568e+17, 9999999999999998.0]"
	var got []string
	for _, f := range in {
		got = append(got, pyFloat(f))
	}
	if s := "[" + strings.Join(got, ", ") + "]"; s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}
