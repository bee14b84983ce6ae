package mlflowfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// metricLine is one line of a metric file: "<timestamp ms> <value>
// [<step>]" in a run's metrics/<key> (2 fields in MLflow's first
// versions, 3 since, 5 when the point names a dataset: "... <dataset name>
// <dataset digest>"), and "<timestamp> <value> <step> <run id> [<dataset
// name> <dataset digest>]" in a logged model's metrics/<key> (4 or 6
// fields). MLflow writes a dataset name with spaces as it is, which its
// own reader then refuses; here the digest is the last field and the name
// what lies between. Values are Python float text ("nan", "inf", "-inf"
// included).
type metricLine struct {
	Time, Step                 int64
	Value                      float64
	RunID                      string
	DatasetName, DatasetDigest string
}

// parseMetricLine parses one line of a run's metric file (model is false)
// or a logged model's (model is true).
func parseMetricLine(line []byte, model bool) (metricLine, error) {
	var buf [8][]byte // a line's fields without an allocation, for all but odd lines
	fields := appendFields(buf[:0], line)
	var m metricLine
	n := len(fields)
	switch {
	case !model && (n == 2 || n == 3 || n >= 5):
	case model && (n == 4 || n >= 6):
	default:
		want := "2, 3 or 5"
		if model {
			want = "4 or 6"
		}
		return m, fmt.Errorf("%d fields, want %s", n, want)
	}
	var err error
	if m.Time, err = strconv.ParseInt(string(fields[0]), 10, 64); err != nil {
		return m, fmt.Errorf("timestamp %q: not an integer", fields[0])
	}
	if m.Value, err = parseValue(string(fields[1])); err != nil {
		return m, err
	}
	if n >= 3 {
		if m.Step, err = strconv.ParseInt(string(fields[2]), 10, 64); err != nil {
			return m, fmt.Errorf("step %q: not an integer", fields[2])
		}
	}
	var rest [][]byte
	if n > 3 {
		rest = fields[3:]
	}
	if model {
		m.RunID, rest = string(rest[0]), rest[1:]
	}
	if len(rest) >= 2 {
		m.DatasetName = string(bytes.Join(rest[:len(rest)-1], []byte(" ")))
		m.DatasetDigest = string(rest[len(rest)-1])
	}
	return m, nil
}

// appendFields appends the space-separated fields of line to dst.
func appendFields(dst [][]byte, line []byte) [][]byte {
	start := -1
	for i, c := range line {
		space := c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
		switch {
		case space && start >= 0:
			dst, start = append(dst, line[start:i]), -1
		case !space && start < 0:
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:])
	}
	return dst
}

// parseValue parses Python's float text, which strconv.ParseFloat reads
// (nan, inf, -inf, 1e-05) except forms Go spells differently.
func parseValue(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: not a number", s)
	}
	return v, nil
}

// readMetricLines calls fn for each non-empty line of a metric file, in
// file order, with its 1-based line number. A line that does not parse
// stops the read with an error naming path and line; the lines before it
// have been passed to fn.
func readMetricLines(path string, r io.Reader, model bool, fn func(metricLine) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := parseMetricLine(line, model)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if !fn(m) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
