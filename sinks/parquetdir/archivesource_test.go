package parquetdir_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

// TestArchiveSourceSeesGrownRun: an archive used as a source (a backup
// synced onward to a second archive) tells a run that grew in it from one
// that did not, by the fingerprint its manifest keeps: a FINISHED run that
// gained a point at the first source and was synced into archive A is
// appended to in B with that point alone, the other finished runs are
// unchanged, and B reads back as the source. A RUNNING run's fingerprint
// covers its files in A, so with nothing changed every run is unchanged,
// and a RUNNING run that grew in A reaches B.
func TestArchiveSourceSeesGrownRun(t *testing.T) {
	ctx := context.Background()
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	early, grown := sinktest.Grown()
	la, lb := &sinktest.MemLedger{}, &sinktest.MemLedger{}
	into := func(src sources.Source, arch string, l transfer.Ledger) *transfer.Report {
		t.Helper()
		dst, err := parquetdir.New(arch)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := transfer.Copy(ctx, src, dst, transfer.Options{Ledger: l, Backoff: func(int) time.Duration { return 0 }})
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("sync into %s: %v %+v", arch, err, rep.Totals)
		}
		return rep
	}
	fromA := func() *transfer.Report {
		t.Helper()
		src, err := srcparquet.New(a, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		return into(src, b, lb)
	}
	into(memsrc.New(early), a, la)
	fromA()
	// Nothing changed: no data moves and no run is written, RUNNING or not.
	rep := fromA()
	if tot := rep.Totals; tot.Points != 0 || tot.Files != 0 || tot.Bytes != 0 || tot.Committed != 0 {
		t.Fatalf("A -> B with nothing changed: %+v", tot)
	}
	running := 0
	for _, r := range rep.Runs {
		if r.Outcome != transfer.Unchanged {
			t.Errorf("A -> B with nothing changed: run %s %s (%s), want unchanged", r.Origin, r.Outcome, r.Reason)
		}
	}
	for _, rd := range early.Runs {
		if rd.Run.Status == schema.StatusRunning {
			running++
		}
	}
	if running == 0 {
		t.Fatal("no RUNNING run in sinktest.Grown's early data")
	}
	// Runs that grew while RUNNING (sinktest.Grown) reach B through A,
	// appended to, and only they.
	into(memsrc.New(grown), a, la)
	grownRuns := map[string]bool{}
	for _, r := range fromA().Runs {
		if r.Outcome == transfer.Committed {
			grownRuns[r.Origin] = true
		}
	}
	if len(grownRuns) == 0 {
		t.Fatal("A -> B after runs grew in A: no run written")
	}
	equal := func(want *dataset.Dataset) {
		t.Helper()
		back, err := srcparquet.New(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		got, err := dataset.Read(ctx, back)
		if err != nil {
			t.Fatal(err)
		}
		if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
			t.Fatalf("B differs from the source:\n%s", strings.Join(diff, "\n"))
		}
	}
	equal(grown)

	// A FINISHED run gains a point and a new name at the first source: A
	// gets it, and A -> B appends that point alone; the other finished
	// runs are unchanged.
	later := grown.Clone()
	var changed string
	for _, rd := range later.Runs {
		if o := rd.Run.Origin.String(); rd.Run.Status == schema.StatusFinished && !grownRuns[o] && len(rd.Metrics) > 0 {
			last := rd.Metrics[len(rd.Metrics)-1]
			last.Step, last.Time = last.Step+1000, last.Time+1000
			rd.Metrics = append(rd.Metrics, last)
			rd.Run.Name += " (resumed)"
			changed = o
			break
		}
	}
	if changed == "" {
		t.Fatal("no FINISHED run with metrics in sinktest.Grown")
	}
	// The memory source gives its RUNNING run no fingerprint, so that run
	// is written into A again (with no new point) and its files there change.
	rewrittenInA := map[string]bool{}
	rep = into(memsrc.New(later), a, la)
	if rep.Totals.Points != 1 {
		t.Fatalf("into A: %+v, want the one new point", rep.Totals)
	}
	for _, r := range rep.Runs {
		rewrittenInA[r.Origin] = r.Outcome == transfer.Committed && r.Origin != changed
	}
	rep = fromA()
	unchanged := 0
	for _, r := range rep.Runs {
		switch {
		case r.Origin == changed:
			if r.Outcome != transfer.Committed || !r.Appended || r.Points != 1 {
				t.Errorf("A -> B: the run that grew in A: %s, appended %v, %d points (%s); want 1 point appended", r.Outcome, r.Appended, r.Points, r.Reason)
			}
		case rewrittenInA[r.Origin]:
			if r.Points != 0 || r.Files != 0 {
				t.Errorf("A -> B: run %s (written into A again with nothing new) moved %d points, %d files", r.Origin, r.Points, r.Files)
			}
		default:
			unchanged++
			if r.Outcome != transfer.Unchanged {
				t.Errorf("A -> B: run %s %s (%s), want unchanged", r.Origin, r.Outcome, r.Reason)
			}
		}
	}
	if unchanged == 0 {
		t.Error("A -> B: no unchanged run to compare with")
	}
	equal(later)
}
