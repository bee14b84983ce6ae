package mlflowfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// IsMetricFile reports whether path names a metric file of a file store:
// a file below a metrics/ folder of a run or of a logged model.
func IsMetricFile(path string) bool {
	return strings.Contains("/"+filepath.ToSlash(path), "/metrics/")
}

// inspectLine is one line of Inspect's output.
type inspectLine struct {
	Line          int              `json:"line"`
	Timestamp     *int64           `json:"timestamp,omitempty"`
	Value         *mlflowapi.Float `json:"value,omitempty"`
	Step          *int64           `json:"step,omitempty"`
	RunID         string           `json:"run_id,omitempty"`
	DatasetName   string           `json:"dataset_name,omitempty"`
	DatasetDigest string           `json:"dataset_digest,omitempty"`
	Damage        string           `json:"damage,omitempty"`
}

// Inspect prints the points of metric file r (named name; a logged
// model's when name lies below a models/ folder) as one JSON line per line
// of the file, with its 1-based line number; a line that does not parse is
// printed as {"line":N,"damage":...} and reading goes on. It returns the
// number of damaged lines.
func Inspect(w io.Writer, r io.Reader, name string) (damaged int, err error) {
	model := strings.Contains("/"+filepath.ToSlash(name), "/models/m-")
	out := bufio.NewWriter(w)
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		m, perr := parseMetricLine(sc.Bytes(), model)
		l := inspectLine{Line: n}
		if perr != nil {
			damaged++
			l.Damage = perr.Error()
		} else {
			v := mlflowapi.Float(m.Value)
			l.Timestamp, l.Value, l.Step = &m.Time, &v, &m.Step
			l.RunID, l.DatasetName, l.DatasetDigest = m.RunID, m.DatasetName, m.DatasetDigest
		}
		if err := enc.Encode(l); err != nil {
			return damaged, err
		}
	}
	if err := sc.Err(); err != nil {
		return damaged, err
	}
	return damaged, out.Flush()
}
