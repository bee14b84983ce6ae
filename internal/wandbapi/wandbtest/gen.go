package wandbtest

import (
	"io"
	"math"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Generated is a run's history made on demand instead of held (Run.History),
// for runs too large to keep in memory (the W&B cloud benchmark's 1,000 runs
// of 10,000 steps): Rows rows with the dense steps 0 … Rows-1, row i holding
// "_step" i, "_timestamp" Time(i) and every key of Keys, Keys[k] being the
// float64 Value(i, k). Time and Value must be deterministic: rows are made
// again for every answer (paged history, live tail, historyKeys), and a
// parquet export file is encoded row group by row group straight into its
// download, so the server's memory stays flat whatever the number of runs
// and steps. A generated run answers exactly what a run whose History holds
// the same rows answers (TestGeneratedServesAsHistory), and the real SDK
// reads it (TestRealSDKReadsGenerated). Grow refuses a generated run.
type Generated struct {
	Rows  int
	Keys  []string
	Time  func(row int) float64
	Value func(row, key int) float64
}

// row makes row i.
func (g *Generated) row(i int) map[string]any {
	m := make(map[string]any, len(g.Keys)+2)
	m["_step"] = float64(i)
	m["_timestamp"] = g.Time(i)
	for k, name := range g.Keys {
		m[name] = g.Value(i, k)
	}
	return m
}

// GeneratedEvents is a run's system-metrics rows (Run.Events) made on
// demand instead of held, for benchmarks of many runs with system metrics:
// Rows rows, row i being Row(i) (its "system.<key>" values, _timestamp,
// _runtime, _wandb), which must be deterministic: rows are made again for
// every answer. A run with EventsGenerated answers exactly what a run whose
// Events hold the same rows answers (TestGeneratedEventsServeAsEvents).
type GeneratedEvents struct {
	Rows int
	Row  func(i int) map[string]any
}

// eventsLen is the number of system-metrics rows of r.
func (r *Run) eventsLen() int {
	if r.EventsGenerated != nil {
		return r.EventsGenerated.Rows
	}
	return len(r.Events)
}

// historyLen is the number of history rows of r.
func (r *Run) historyLen() int {
	if r.Generated != nil {
		return r.Generated.Rows
	}
	return len(r.History)
}

// rowAt is history row i of r (0 <= i < historyLen); a generated row is
// made anew.
func (r *Run) rowAt(i int) map[string]any {
	if r.Generated != nil {
		return r.Generated.row(i)
	}
	return r.History[i]
}

// eachRow calls fn with every history row of r whose step is in [lo, hi),
// in step order. A generated run makes only those rows.
func (r *Run) eachRow(lo, hi int64, fn func(map[string]any)) {
	if g := r.Generated; g != nil {
		for i := max(lo, 0); i < hi && i < int64(g.Rows); i++ {
			fn(g.row(int(i)))
		}
		return
	}
	for _, row := range r.History {
		if st := stepOf(row); st >= lo && st < hi {
			fn(row)
		}
	}
}

// generatedRowGroup is the number of rows of a generated export file's row
// groups: what the encoder holds at once.
const generatedRowGroup = 4096

// writeGenerated encodes rows [lo, hi) of g as an export file into w, with
// the schema parquetFile gives the same rows (`_step` a required INT64,
// `_timestamp` and every key an optional DOUBLE), row group by row group.
func writeGenerated(w io.Writer, g *Generated, lo, hi int) error {
	group := parquet.Group{"_step": parquet.Leaf(parquet.Int64Type), "_timestamp": parquet.Optional(parquet.Leaf(parquet.DoubleType))}
	for _, k := range g.Keys {
		group[k] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
	}
	schema := parquet.NewSchema("history", group)
	cols := schema.Columns()
	// what each column holds: -2 _step, -1 _timestamp, else a key's index
	src := make([]int, len(cols))
	index := map[string]int{"_step": -2, "_timestamp": -1}
	for k, name := range g.Keys {
		index[name] = k
	}
	for i, path := range cols {
		src[i] = index[path[0]]
	}
	pw := parquet.NewWriter(w, schema, parquet.MaxRowsPerRowGroup(generatedRowGroup))
	batch := make([]parquet.Row, 0, 256)
	values := make([]parquet.Value, 256*len(cols))
	flush := func() error {
		_, err := pw.WriteRows(batch)
		batch = batch[:0]
		return err
	}
	for i := lo; i < hi; i++ {
		pr := values[len(batch)*len(cols) : (len(batch)+1)*len(cols) : (len(batch)+1)*len(cols)]
		for c, s := range src {
			var v float64
			switch s {
			case -2:
				pr[c] = parquet.Int64Value(int64(i)).Level(0, 0, c)
				continue
			case -1:
				v = g.Time(i)
			default:
				v = g.Value(i, s)
			}
			pr[c] = parquet.DoubleValue(v).Level(0, 1, c)
		}
		batch = append(batch, pr)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return pw.Close()
}

// WriteExport writes the run's whole history as one parquet export file,
// the bytes the server sends for it (bench/wandbfloor keeps them on disk to
// measure reading them without a server).
func (g *Generated) WriteExport(w io.Writer) error { return writeGenerated(w, g, 0, g.Rows) }

// BenchRun is run i of the W&B cloud benchmark's generated project
// (bench/wandbserve, bench/wandbfloor): steps rows of the float metrics
// keys, the run's rows starting at created plus i minutes.
func BenchRun(i, steps int, keys []string, created time.Time) *Generated {
	return &Generated{Rows: steps, Keys: keys,
		Time:  func(s int) float64 { return float64(created.Unix()) + float64(i*60) + float64(s)/100 },
		Value: func(s, k int) float64 { return math.Sin(float64(i*7+s)*0.01+float64(k)) * float64(k+1) }}
}
