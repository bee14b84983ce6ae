package transfer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestRunsSharingAnOriginAreNotMerged: a source that lists two runs with
// one origin (an MLflow server holding two copies runferry made of one W&B
// run, under two --experiment-prefix values: each reads back as the W&B
// run) would have the destination hold one of them, whichever came last,
// and a sync flip between them each night, with exit 0. The first is
// copied; the second is named as a problem (exit 3) and not copied.
func TestRunsSharingAnOriginAreNotMerged(t *testing.T) {
	inDatabase(t, func(t *testing.T) {
		base := dataset.Canonical()
		first := base.Runs[0]
		twin := *first
		twin.Run.Name = "the other copy"
		src := &dataset.Dataset{Experiments: base.Experiments, Runs: append([]*dataset.RunData{first}, &twin)}
		dst := memsink.New(sinks.Limits{})
		rep, err := transfer.Copy(context.Background(), memsrc.New(src), dst, fast(transfer.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Totals.Committed != 1 || len(rep.Problems) != 1 || rep.Verdict(err) != transfer.VerdictRunsFailed {
			t.Fatalf("totals %+v, problems %q, verdict %d: want 1 committed and 1 problem (exit 3)", rep.Totals, rep.Problems, rep.Verdict(err))
		}
		p := rep.Problems[0]
		if !strings.Contains(p, first.Run.Origin.String()) || !strings.Contains(p, "the other copy") || !strings.Contains(p, "not copied") {
			t.Errorf("problem does not name the run and its origin: %q", p)
		}
		if got := dst.Dataset().Runs; len(got) != 1 || got[0].Run.Name != first.Run.Name {
			t.Errorf("destination holds %d runs, want the first only", len(got))
		}
	})
}

// TestExperimentsSharingAnOriginAreNotMerged: a source that lists two
// experiments with one origin (an MLflow server holding runferry's copy of
// a W&B project as nlp6/Entity_Marker and a restore of it as
// restore/nlp6/Entity_Marker) would have the destination merge them into
// one. The first is copied with its runs; the second is named by both
// names as one problem (exit 3), and neither it nor its runs are copied
// (nor named again run by run). Before, its runs were refused one by one
// as runs sharing an origin, and the experiment itself went unnamed.
func TestExperimentsSharingAnOriginAreNotMerged(t *testing.T) {
	inDatabase(t, func(t *testing.T) {
		base := dataset.Canonical()
		first := base.Experiments[0]
		twin := first
		twin.Name = "restore/" + first.Name
		src := &dataset.Dataset{Experiments: append([]schema.Experiment{first, twin}, base.Experiments[1:]...), Runs: base.Runs}
		dst := memsink.New(sinks.Limits{})
		rep, err := transfer.Copy(context.Background(), memsrc.New(src), dst, fast(transfer.Options{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 1 || rep.Verdict(err) != transfer.VerdictRunsFailed || rep.Totals.Committed != len(base.Runs) {
			t.Fatalf("totals %+v, problems %q, verdict %d: want every run committed once and 1 problem (exit 3)", rep.Totals, rep.Problems, rep.Verdict(err))
		}
		want := fmt.Sprintf("experiment %s (%q): not copied, nor its runs: the source lists another experiment with the same origin (%q)", first.Origin, twin.Name, first.Name)
		if !strings.HasPrefix(rep.Problems[0], want) {
			t.Errorf("problem %q\nwant it to start %q", rep.Problems[0], want)
		}
		for _, e := range dst.Dataset().Experiments {
			if e.Name == twin.Name {
				t.Errorf("destination holds the second experiment %q", twin.Name)
			}
		}
	})
}

// inDatabase runs f twice: as a job notes the origins it lists by default
// (held in memory while they are few), and with every note written to
// the job's temporary database (SetOriginsInMemory(1)), as a job of many
// runs notes them.
func inDatabase(t *testing.T, f func(t *testing.T)) {
	t.Run("memory", f)
	t.Run("database", func(t *testing.T) {
		defer transfer.SetOriginsInMemory(1)()
		f(t)
	})
}
