package transfer_test

import (
	"context"
	"iter"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// streamedSource is a memory source that lists light headers and gives a
// run in full either before its streams (Run) or after them
// (RunAfterStreams), counting each.
type streamedSource struct {
	*memsrc.Source
	data            *dataset.Dataset
	full, afterward atomic.Int64
}

var _ sources.StreamedRunReader = (*streamedSource)(nil)

// header is the light header of r: what sources.HeaderLister promises.
func header(r schema.Run) schema.Run {
	return schema.Run{Origin: r.Origin, Experiment: r.Experiment, Name: r.Name, Start: r.Start, Status: r.Status}
}

func (s *streamedSource) RunHeaders(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		for r, err := range s.Runs(ctx, exp) {
			if !yield(header(r), err) || err != nil {
				return
			}
		}
	}
}

func (s *streamedSource) find(ref schema.Ref) schema.Run {
	r := s.data.Run(ref).Run
	r.Canonicalize()
	return r
}

func (s *streamedSource) Run(_ context.Context, ref schema.Ref) (schema.Run, error) {
	s.full.Add(1)
	return s.find(ref), nil
}

func (s *streamedSource) RunAfterStreams(_ context.Context, ref schema.Ref) (schema.Run, error) {
	s.afterward.Add(1)
	return s.find(ref), nil
}

// TestLateRun: from a source that gives runs after their streams
// (sources.StreamedRunReader) into a sink that takes them at commit
// (sinks.LateRunSink), a copy reads no run in full before its streams but
// each once after them, and the destination and the report's damage are
// those of the full runs; a dry run and --since read each run in full
// before its streams, as before, and --force lists them in full.
func TestLateRun(t *testing.T) {
	want := dataset.Canonical()
	damaged := 0
	for _, r := range want.Runs {
		if len(r.Run.Damage) > 0 {
			damaged++
		}
	}
	if damaged == 0 {
		t.Fatal("no run of the canonical dataset has damage: the report's damage is not tested")
	}
	src := &streamedSource{Source: memsrc.New(want), data: want}
	dst := memsink.New(sinks.Limits{})
	rep, err := transfer.Copy(context.Background(), src, dst, fast(transfer.Options{}))
	if err != nil || rep.Totals.Committed != len(want.Runs) {
		t.Fatalf("copy: %v, totals %+v", err, rep.Totals)
	}
	mustEqual(t, want, dst)
	if n, m := src.full.Load(), src.afterward.Load(); n != 0 || m != int64(len(want.Runs)) {
		t.Errorf("runs read in full before their streams %d, after %d; want 0 and %d", n, m, len(want.Runs))
	}
	for _, res := range rep.Runs {
		var full schema.Run
		for _, r := range want.Runs {
			if r.Run.Origin.String() == res.Origin {
				full = src.find(r.Run.Origin)
			}
		}
		d, inherited := full.SplitDamage()
		if !reflect.DeepEqual(res.Damage, d) || !reflect.DeepEqual(res.InheritedDamage, inherited) {
			t.Errorf("run %s: report's damage %q / %q, want the full run's %q / %q", res.Origin, res.Damage, res.InheritedDamage, d, inherited)
		}
	}

	for name, opt := range map[string]transfer.Options{
		"dry run": {DryRun: true},
		"force": {Verify: func(context.Context, schema.Experiment, schema.Run) (string, error) {
			return "", nil
		}},
		"since": {Filter: transfer.Filter{Since: time.Unix(0, 0)}},
	} {
		src := &streamedSource{Source: memsrc.New(want), data: want}
		if _, err := transfer.Copy(context.Background(), src, memsink.New(sinks.Limits{}), fast(opt)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// --force lists the runs in full (Runs), the others read each
		// header's run in full (Run) before its streams.
		wantFull := int64(len(want.Runs))
		if opt.Verify != nil {
			wantFull = 0
		}
		if n, m := src.full.Load(), src.afterward.Load(); n != wantFull || m != 0 {
			t.Errorf("%s: runs read in full before their streams %d, after %d; want %d and 0", name, n, m, wantFull)
		}
	}
}
