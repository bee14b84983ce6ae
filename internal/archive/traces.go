package archive

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/schema"
)

// TraceRow is one row of traces/: a trace of an experiment (since format
// version 3). Its span document is kept as given, as JSON text.
type TraceRow struct {
	Trace           string     `parquet:"trace"` // origin "system:id"
	OriginSystem    string     `parquet:"origin_system,dict"`
	OriginID        string     `parquet:"origin_id"`
	Experiment      string     `parquet:"experiment,dict"`
	TraceID         string     `parquet:"trace_id"`
	Run             string     `parquet:"run,dict"` // origin of the run it was logged in, "" for none
	RequestTime     *time.Time `parquet:"request_time,optional,timestamp(millisecond)"`
	DurationMS      int64      `parquet:"duration_ms"`
	State           string     `parquet:"state,dict"`
	RequestPreview  string     `parquet:"request_preview"`
	ResponsePreview string     `parquet:"response_preview"`
	ClientRequestID string     `parquet:"client_request_id"`
	Tags            string     `parquet:"tags"`     // JSON array of {"key","value"}, sorted by key
	Metadata        string     `parquet:"metadata"` // JSON array of {"key","value"}, sorted by key
	Spans           *string    `parquet:"spans,optional"`
	Assessments     int64      `parquet:"assessments"` // assessments the source held (not copied)
}

// TraceToRow converts t into its row.
func TraceToRow(t schema.Trace) TraceRow {
	pairs := func(tags []schema.Tag) string {
		out := make([]kv, len(tags))
		for i, x := range tags {
			out[i] = kv{x.Key, x.Value}
		}
		return jsonText(out)
	}
	row := TraceRow{Trace: t.Origin.String(), OriginSystem: t.Origin.System, OriginID: t.Origin.ID,
		Experiment: t.Experiment.String(), TraceID: t.ID, Run: t.Run.String(), RequestTime: optTime(t.RequestTime),
		DurationMS: t.Duration.Milliseconds(), State: t.State, RequestPreview: t.RequestPreview,
		ResponsePreview: t.ResponsePreview, ClientRequestID: t.ClientRequestID,
		Tags: pairs(t.Tags), Metadata: pairs(t.Metadata), Assessments: int64(t.Assessments)}
	if len(t.Spans) > 0 {
		s := string(t.Spans)
		row.Spans = &s
	}
	return row
}

// Decode converts the row back.
func (r TraceRow) Decode() (schema.Trace, error) {
	t := schema.Trace{Origin: schema.Ref{System: r.OriginSystem, ID: r.OriginID}, ID: r.TraceID,
		RequestTime: fromOptTime(r.RequestTime), Duration: time.Duration(r.DurationMS) * time.Millisecond,
		State: r.State, RequestPreview: r.RequestPreview, ResponsePreview: r.ResponsePreview,
		ClientRequestID: r.ClientRequestID, Assessments: int(r.Assessments)}
	var err error
	if t.Experiment, err = parseRef(r.Experiment); err != nil {
		return t, fmt.Errorf("trace %s: experiment: %w", r.Trace, err)
	}
	if r.Run != "" {
		if t.Run, err = parseRef(r.Run); err != nil {
			return t, fmt.Errorf("trace %s: run: %w", r.Trace, err)
		}
	}
	for _, x := range []struct {
		text string
		to   *[]schema.Tag
	}{{r.Tags, &t.Tags}, {r.Metadata, &t.Metadata}} {
		var pairs []kv
		if err := json.Unmarshal([]byte(x.text), &pairs); err != nil {
			return t, fmt.Errorf("trace %s: tags or metadata: %w", r.Trace, err)
		}
		for _, p := range pairs {
			*x.to = append(*x.to, schema.Tag{Key: p.Key, Value: p.Value})
		}
	}
	if r.Spans != nil {
		t.Spans = json.RawMessage(*r.Spans)
	}
	return t, nil
}

// PutTraces stores traces as experiment exp's traces, merged with those the
// archive holds for it: a trace of the same origin is replaced, others are
// kept. Rows are ordered by request time and origin. Nothing is written
// when the merged traces equal the stored ones (and their file is whole).
// The experiment must be stored (PutExperiment) first.
func (w *Writer) PutTraces(exp string, traces []schema.Trace) error {
	w.expMu.Lock()
	defer w.expMu.Unlock()
	w.mu.Lock()
	i, ok := slices.BinarySearchFunc(w.m.Experiments, exp, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	var entry ExperimentEntry
	if ok {
		entry = w.m.Experiments[i]
		entry.Files = slices.Clone(entry.Files)
	}
	w.mu.Unlock()
	if !ok {
		return fmt.Errorf("archive: traces of experiment %s, which the archive does not hold", exp)
	}
	byOrigin := map[string]TraceRow{}
	var oldFile *FileEntry
	for _, f := range entry.Files {
		if f.Table != TableTraces {
			continue
		}
		oldFile = &f
		err := readTable(w.st, f, 256, func(rows []TraceRow) error {
			for _, r := range rows {
				byOrigin[r.Trace] = r
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("archive: reading the traces of experiment %s: %w", exp, err)
		}
	}
	for _, t := range traces {
		byOrigin[t.Origin.String()] = TraceToRow(t)
	}
	rows := make([]TraceRow, 0, len(byOrigin))
	for _, r := range byOrigin {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b TraceRow) int {
		return cmp.Or(fromOptTime(a.RequestTime).Compare(fromOptTime(b.RequestTime)), strings.Compare(a.Trace, b.Trace))
	})
	b, _ := json.Marshal(rows)
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	if entry.TracesDigest == digest && oldFile != nil && filesWhole(w.st, []FileEntry{*oldFile}) {
		return nil
	}
	written, err := writeTable(w.st, TableTraces, exp, w.snapshot, rows)
	if err != nil {
		return err
	}
	files := slices.DeleteFunc(entry.Files, func(f FileEntry) bool { return f.Table == TableTraces })
	entry.Files = append(files, written...)
	entry.TracesDigest = digest
	return w.commit(journalRecord{Experiment: &entry})
}

// Traces returns the traces of the experiment entry e, ordered by request
// time and origin (none for an archive before format version 3).
func (r *Reader) Traces(e ExperimentEntry) ([]schema.Trace, error) {
	var out []schema.Trace
	for _, f := range e.Files {
		if f.Table != TableTraces {
			continue
		}
		err := readTable(r.st, f, 256, func(rows []TraceRow) error {
			for _, row := range rows {
				t, err := row.Decode()
				if err != nil {
					return err
				}
				out = append(out, t)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Experiment returns the entry of the experiment with origin, if archived.
func (r *Reader) Experiment(origin string) (ExperimentEntry, bool) {
	i, ok := slices.BinarySearchFunc(r.exps, origin, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	if !ok {
		return ExperimentEntry{}, false
	}
	return r.exps[i], true
}
