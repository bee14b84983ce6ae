package check

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// compareTraces compares the traces of the compared experiments exps when
// both sides hold traces (sources.TraceReader): every trace of the source
// by origin (request time, duration, state, previews, client request id,
// tags, request metadata, the origin of its run, and its span document as
// JSON values, so that a server's re-encoding of the same document is no
// difference), and what the destination holds beyond them: a second copy,
// or a trace the source does not have. With a filter that selects runs,
// only traces of compared runs (and traces of no run) are compared. Traces
// the destination cannot read for a permanent reason (a damaged archive
// file) are a difference naming the reason.
func (res *Result) compareTraces(ctx context.Context, src, dst sources.Source, exps []schema.Ref, f transfer.Filter, seen map[schema.Ref]bool) error {
	sr, ok1 := src.(sources.TraceReader)
	dr, ok2 := dst.(sources.TraceReader)
	if !ok1 || !ok2 {
		return nil
	}
	for _, exp := range exps {
		got := map[schema.Ref][]schema.Trace{}
		var order []schema.Ref
		broken := false
		for t, err := range dr.Traces(ctx, exp) {
			if err != nil {
				if !unreadable(err) {
					return fmt.Errorf("destination: traces of %s: %w", exp, err)
				}
				// What a user of the destination cannot read is a
				// difference; its traces then show as missing.
				res.add(exp, "destination: traces unreadable", "", err.Error())
				broken = true
				break
			}
			if len(got[t.Origin]) == 0 {
				order = append(order, t.Origin)
			}
			got[t.Origin] = append(got[t.Origin], t)
		}
		wanted := map[schema.Ref]bool{}
		for t, err := range sr.Traces(ctx, exp) {
			if err != nil {
				return fmt.Errorf("source: traces of %s: %w", exp, err)
			}
			if f.SelectsRuns() && !t.Run.IsZero() && !seen[t.Run] {
				continue
			}
			res.Traces++
			wanted[t.Origin] = true
			copies := got[t.Origin]
			switch {
			case len(copies) == 0:
				res.add(t.Origin, "missing trace", t.ID, "")
				continue
			case len(copies) > 1:
				res.add(t.Origin, "trace held more than once in the destination", "1 copy", fmt.Sprintf("%d copies", len(copies)))
			}
			res.compareTrace(t, copies[0])
		}
		for _, o := range order {
			if broken {
				break
			}
			t := got[o][0]
			if !wanted[o] && (!f.SelectsRuns() || t.Run.IsZero() || seen[t.Run]) {
				res.add(o, "unexpected trace in the destination (not in the source)", "", t.ID)
			}
		}
	}
	return nil
}

func (res *Result) compareTrace(want, got schema.Trace) {
	add := func(what, w, g string) { res.add(want.Origin, "trace "+what, w, g) }
	if !want.RequestTime.Equal(got.RequestTime) {
		add("request time", timeText(want.RequestTime), timeText(got.RequestTime))
	}
	if want.Duration != got.Duration {
		add("execution duration", want.Duration.String(), got.Duration.String())
	}
	for _, x := range []struct{ what, w, g string }{
		{"state", want.State, got.State},
		{"request preview", want.RequestPreview, got.RequestPreview},
		{"response preview", want.ResponsePreview, got.ResponsePreview},
		{"client request id", want.ClientRequestID, got.ClientRequestID},
		{"run", want.Run.String(), got.Run.String()},
	} {
		if x.w != x.g {
			add(x.what, x.w, x.g)
		}
	}
	if !reflect.DeepEqual(want.Tags, got.Tags) {
		add("tags", jsonText(want.Tags), jsonText(got.Tags))
	}
	if !reflect.DeepEqual(want.Metadata, got.Metadata) {
		add("metadata", jsonText(want.Metadata), jsonText(got.Metadata))
	}
	if !sameJSON(want.Spans, got.Spans) {
		add("spans", clip(want.Spans), clip(got.Spans))
	}
}

// sameJSON reports whether a and b hold the same JSON value (both empty
// counts as the same).
func sameJSON(a, b []byte) bool {
	if len(bytes.TrimSpace(a)) == 0 || len(bytes.TrimSpace(b)) == 0 {
		return len(bytes.TrimSpace(a)) == len(bytes.TrimSpace(b))
	}
	x, err1 := decodeJSON(a)
	y, err2 := decodeJSON(b)
	if err1 != nil || err2 != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

// decodeJSON decodes b keeping numbers as written (span times are
// nanoseconds, beyond float64's exact integers).
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// clip shortens a span document for a difference's text.
func clip(b []byte) string {
	const max = 200
	if len(b) > max {
		return fmt.Sprintf("%s… (%d bytes)", b[:max], len(b))
	}
	return string(b)
}
