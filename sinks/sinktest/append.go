package sinktest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// Grown returns the canonical dataset as a source held it earlier (early)
// and as it holds it now (grown, the canonical dataset itself): the run
// "resnet-50 sweep" was RUNNING, had its steps below 1500 and two log
// lines, one param and a tag fewer, and a tag of another value, and of its
// files an older config.yaml, not yet model/weights.bin, and a file since
// deleted (notes/gone.txt); "still going" had its steps below 6. The
// other runs did not change.
func Grown() (early, grown *dataset.Dataset) {
	grown = dataset.Canonical()
	early = grown.Clone()
	upTo := func(rd *dataset.RunData, step int64) {
		var keep []schema.Metric
		for _, m := range rd.Metrics {
			if m.Step < step {
				keep = append(keep, m)
			}
		}
		rd.Metrics = keep
	}
	big := early.Runs[0]
	big.Run.Status, big.Run.End = schema.StatusRunning, time.Time{}
	big.Run.Params = big.Run.Params[:1]
	big.Run.Tags = []schema.Tag{{Key: "mlflow.source.type", Value: "LOCAL"}, {Key: "stage", Value: "wip"}, {Key: "temporary", Value: "yes"}}
	upTo(big, 1500)
	big.Logs = big.Logs[:2]
	big.RichValues = big.RichValues[:1]
	big.Files = []dataset.File{
		{Path: "config.yaml", Content: []byte("lr: 0.01\n")},
		big.Files[1], big.Files[2],
		{Path: "notes/gone.txt", Content: []byte("deleted at the source")},
	}
	upTo(early.Runs[3], 6)
	return early, grown
}

// MemLedger is a transfer.Ledger in memory. FailPut, when set, is asked
// before each Put and may fail it, as a crash between a sink's commit and
// the ledger's record would.
type MemLedger struct {
	mu      sync.Mutex
	entries map[string]state.Entry
	FailPut func(state.Entry) error
}

// Get implements transfer.Ledger.
func (l *MemLedger) Get(origin string) (state.Entry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[origin]
	return e, ok, nil
}

// Put implements transfer.Ledger.
func (l *MemLedger) Put(e state.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.FailPut != nil {
		if err := l.FailPut(e); err != nil {
			return err
		}
	}
	if l.entries == nil {
		l.entries = map[string]state.Entry{}
	}
	l.entries[e.Origin] = e
	return nil
}

func copyBackoff(int) time.Duration { return time.Millisecond }

func copyWith(t *testing.T, src *dataset.Dataset, dst sinks.Sink, l transfer.Ledger) (*transfer.Report, error) {
	t.Helper()
	return transfer.Copy(context.Background(), memsrc.New(src), dst, transfer.Options{
		Attempts: 1, Ledger: l, Backoff: copyBackoff})
}

// testAppendGrown copies the early dataset, then the grown one with the
// same ledger: the runs that grew are appended to under the same
// destination id with only their new points and their new and changed
// files (sinks.FileDeltaReporter: the two unchanged files are kept, the
// one gone from the source deleted), the others are unchanged, and the
// sink reads back as a fresh copy of the grown dataset.
func testAppendGrown(t *testing.T, opt Opt) {
	early, grown := Grown()
	dst, read := opt.New(t)
	if _, ok := dst.(sinks.Appender); !ok {
		dst.Close()
		t.Skip("the sink does not implement sinks.Appender")
	}
	l := &MemLedger{}
	first, err := copyWith(t, early, dst, l)
	if err != nil || first.Totals.Committed != len(early.Runs) {
		t.Fatalf("first copy: %v %+v", err, first.Totals)
	}
	dst = reopen(t, opt, dst)
	rep, err := copyWith(t, grown, dst, l)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("copy of the grown runs: %v %+v", err, rep.Totals)
	}
	firstID := map[string]string{}
	for _, r := range first.Runs {
		firstID[r.Origin] = r.DestID
	}
	want := map[string][6]int64{ // appended runs: new points, points kept, files and bytes sent, files kept, deleted
		grown.Runs[0].Run.Origin.String(): {1000 + 100, 1500 + 150 + 3, 2, 10 + 70_000, 2, 1},
		grown.Runs[3].Run.Origin.String(): {12, 18, 0, 0, 0, 0},
	}
	for _, r := range rep.Runs {
		n, grew := want[r.Origin]
		got := [6]int64{r.Points, r.KeptPoints, r.Files, r.Bytes, r.KeptFiles, r.DeletedFiles}
		switch {
		case grew && (r.Outcome != transfer.Committed || !r.Appended || got != n):
			t.Errorf("run %s: %s, appended %v (%s); points written, kept, files and bytes sent, files kept, deleted: %v; want appended, %v",
				r.Origin, r.Outcome, r.Appended, r.Reason, got, n)
		case grew && r.DestID != firstID[r.Origin]:
			t.Errorf("run %s: appended to %q, first written as %q", r.Origin, r.DestID, firstID[r.Origin])
		case !grew && r.Outcome != transfer.Unchanged:
			t.Errorf("run %s did not change, yet %s (%s)", r.Origin, r.Outcome, r.Reason)
		}
	}
	if rep.Totals.Appended != len(want) {
		t.Errorf("report counts %d appended runs, want %d", rep.Totals.Appended, len(want))
	}
	dst.Close()
	expectEqual(t, opt, grown, read)
}

// testAppendFailureThenResume injects a failure at each operation of the
// copy that appends in turn, then re-runs it: every outcome must read back
// as a fresh copy of the grown dataset. Then a copy whose ledger could not
// record the append (a crash after the sink committed): the re-run must
// notice that the sink holds another copy than the ledger says and either
// append from the cursors the sink keeps with that copy (a
// sinks.BaseFinder) or write the run whole and say why.
func testAppendFailureThenResume(t *testing.T, opt Opt) {
	early, grown := Grown()
	probe, _ := opt.New(t)
	if _, ok := probe.(sinks.Appender); !ok {
		probe.Close()
		t.Skip("the sink does not implement sinks.Appender")
	}
	l := &MemLedger{}
	if _, err := copyWith(t, early, probe, l); err != nil {
		t.Fatal(err)
	}
	counter := NewFailAt(probe, 0, nil)
	if rep, err := copyWith(t, grown, counter, l); err != nil || rep.Totals.Appended != 2 {
		t.Fatalf("probe: %v %+v", err, rep.Totals)
	}
	probe.Close()
	total := counter.Ops()
	for n, kind := range failurePoints(opt, total) {
		dst, read := opt.New(t)
		l := &MemLedger{}
		if _, err := copyWith(t, early, dst, l); err != nil {
			t.Fatal(err)
		}
		dst = reopen(t, opt, dst)
		if _, err := copyWith(t, grown, NewFailAt(dst, n, kind), l); err == nil && fault.KindOf(kind) == fault.KindFatal {
			t.Fatalf("failure %d (fatal): the copy did not stop", n)
		}
		dst = reopen(t, opt, dst)
		rep, err := copyWith(t, grown, dst, l)
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("failure %d: resume: err %v, totals %+v", n, err, rep.Totals)
		}
		dst.Close()
		expectEqual(t, opt, grown, read)
	}
	t.Logf("injected a failure at each of %d operations of an append (stride %d, from %d)", total, opt.FailureStride, opt.FailureFirst)

	dst, read := opt.New(t)
	l = &MemLedger{}
	if _, err := copyWith(t, early, dst, l); err != nil {
		t.Fatal(err)
	}
	dst = reopen(t, opt, dst)
	lost := errors.New("sinktest: the ledger lost the record")
	l.FailPut = func(e state.Entry) error {
		if e.Status == string(transfer.Committed) {
			return lost
		}
		return nil
	}
	if _, err := copyWith(t, grown, dst, l); !errors.Is(err, lost) {
		t.Fatalf("copy with a failing ledger returned %v", err)
	}
	l.FailPut = nil
	dst = reopen(t, opt, dst)
	rep, err := copyWith(t, grown, dst, l)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("re-run after the ledger lost a record: %v %+v", err, rep.Totals)
	}
	whole, fromSink := 0, 0
	_, finds := dst.(sinks.BaseFinder)
	for _, r := range rep.Runs {
		switch {
		case r.Outcome == transfer.Committed && r.Appended,
			// nothing new since the commit the ledger lost: found equal
			// to its copy by a sink that compares (sinks.UnchangedReporter)
			r.Outcome == transfer.Unchanged:
			if strings.Contains(r.Reason, "cursors kept in the destination") {
				fromSink++
			}
		case r.Outcome == transfer.Committed:
			whole++
			if finds {
				t.Errorf("run %s written whole (%s), though the sink keeps the cursors of its copy (sinks.BaseFinder)", r.Origin, r.Reason)
			} else if !strings.Contains(r.Reason, "cannot append") {
				t.Errorf("run %s written whole for the reason %q, want one saying why it could not be appended to", r.Origin, r.Reason)
			}
		}
	}
	switch {
	case finds && fromSink == 0:
		t.Errorf("no run was appended to from the cursors the sink keeps after the ledger lost its record: %+v", rep.Runs)
	case !finds && whole == 0:
		t.Errorf("no run was written whole after the ledger lost its record: %+v", rep.Runs)
	}
	dst.Close()
	expectEqual(t, opt, grown, read)
}

// testAppendUnderFormerOrigin copies the early dataset with a ledger, then
// the same runs from a source whose origins changed (FormerSource over
// Renamed, as after an upgrade), then the grown runs from that source, all
// with the same ledger. The second copy finds the ledger's cursors under
// the former origins: every run is appended to (re-keyed to its new
// origin, under the same destination id), or, for a sink that cannot
// (Opt.FormerAppendRefused), written whole saying why. The third copy
// appends the runs that grew, though they have former origins, and leaves
// the others unchanged. The sink reads back as a fresh copy of the
// renamed grown dataset.
func testAppendUnderFormerOrigin(t *testing.T, opt Opt) {
	early, grown := Grown()
	dst, read := opt.New(t)
	if _, ok := dst.(sinks.Appender); !ok {
		dst.Close()
		t.Skip("the sink does not implement sinks.Appender")
	}
	l := &MemLedger{}
	first, err := copyWith(t, early, dst, l)
	if err != nil || first.Totals.Committed != len(early.Runs) {
		t.Fatalf("first copy: %v %+v", err, first.Totals)
	}
	firstID := map[string]string{}
	for _, r := range first.Runs {
		firstID["instance-b/"+strings.TrimPrefix(r.Origin, "memory:")] = r.DestID
	}
	copyRenamed := func(d *dataset.Dataset) *transfer.Report {
		t.Helper()
		dst = reopen(t, opt, dst)
		rep, err := transfer.Copy(context.Background(), FormerSource{memsrc.New(Renamed(d))}, dst, transfer.Options{
			Attempts: 1, Ledger: l, Backoff: copyBackoff})
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("copy under the new origins: %v %+v", err, rep.Totals)
		}
		return rep
	}
	rep := copyRenamed(early)
	appended := 0
	for _, r := range rep.Runs {
		id := strings.TrimPrefix(r.Origin, "memory:")
		switch {
		case r.Outcome != transfer.Committed || !strings.Contains(r.Reason, "former origin"):
			t.Errorf("run %s: %s (%s), want it committed for a reason naming its former origin", r.Origin, r.Outcome, r.Reason)
		case r.Appended:
			appended++
			if opt.FormerAppendRefused != "" {
				t.Errorf("run %s appended under its former origin, though the sink is said to refuse", r.Origin)
			}
			if r.Points != 0 {
				t.Errorf("run %s: %d points written appending to its copy under the former origin, want 0", r.Origin, r.Points)
			}
			if r.DestID != firstID[id] {
				t.Errorf("run %s: appended to %q, first written as %q", r.Origin, r.DestID, firstID[id])
			}
		case opt.FormerAppendRefused != "" && !strings.Contains(r.Reason, opt.FormerAppendRefused):
			t.Errorf("run %s written whole for the reason %q, want one saying %q", r.Origin, r.Reason, opt.FormerAppendRefused)
		}
	}
	if opt.FormerAppendRefused == "" && appended == 0 {
		t.Errorf("no run held under its former origin was appended to: %+v", rep.Runs)
	}
	t.Logf("%d of %d runs held under their former origin appended to", appended, len(rep.Runs))

	rep = copyRenamed(grown)
	grew := map[string]bool{Renamed(grown).Runs[0].Run.Origin.String(): true, Renamed(grown).Runs[3].Run.Origin.String(): true}
	for _, r := range rep.Runs {
		switch {
		case grew[r.Origin] && (r.Outcome != transfer.Committed || !r.Appended):
			t.Errorf("run %s grew and has a former origin: %s, appended %v (%s); want it appended", r.Origin, r.Outcome, r.Appended, r.Reason)
		case !grew[r.Origin] && r.Outcome != transfer.Unchanged:
			t.Errorf("run %s did not change, yet %s (%s)", r.Origin, r.Outcome, r.Reason)
		}
	}
	dst.Close()
	expectEqual(t, opt, Renamed(grown), read)
}
