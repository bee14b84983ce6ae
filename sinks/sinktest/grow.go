package sinktest

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/wandbdir"
)

// GrowWandb has the real wandb SDK (offline, testdata/wandb/grow.py) write
// steps [from, to) of "loss" and "acc" into the run id under dir/wandb,
// resuming the run when it exists, as a restarted training job does. Extra
// arguments are passed on to grow.py.
func GrowWandb(t *testing.T, dir, id string, from, to int, extra ...string) {
	t.Helper()
	script := filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "grow.py")
	args := append([]string{script, dir, id, strconv.Itoa(from), strconv.Itoa(to)}, extra...)
	out, err := exec.Command(testenv.Python(t), args...).CombinedOutput()
	if err != nil {
		s := string(out)
		if lines := strings.Split(s, "\n"); len(lines) > 30 {
			s = strings.Join(lines[len(lines)-30:], "\n")
		}
		t.Fatalf("grow.py %s %d..%d: %v\n%s", id, from, to, err, s)
	}
}

// OpenWandb opens the W&B folder dir/wandb as a source, with every run
// without an exit record taken as crashed at once (crashed-after=1ns), so
// that its state does not depend on how long ago the SDK wrote it.
func OpenWandb(t *testing.T, dir string) sources.Source {
	t.Helper()
	loc, err := location.Parse("wandb:"+dir+"/wandb?crashed-after=1ns", func(string) (location.Kind, bool) { return location.PathKind, true })
	if err != nil {
		t.Fatal(err)
	}
	src, err := wandbdir.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Growing syncs a W&B folder holding one growing run (see GrowWandb) into
// a sink, the way a nightly `runferry sync` does.
type Growing struct {
	Dir    string          // the folder GrowWandb writes under
	Ledger transfer.Ledger // kept across syncs
	// Sink returns the sink to sync into and what to call once the sync is
	// done with it (nil: nothing).
	Sink func(t *testing.T) (sinks.Sink, func() error)
	// Read opens the sink's contents as a source, for check.
	Read func(t *testing.T) sources.Source
	// Options, when set, adjusts the copy's options (Ledger and Backoff
	// are set already).
	Options func(*transfer.Options)
}

// Sync copies the folder into the sink with the ledger, requires one run
// and no failure, then requires check to find the sink's copy equal to the
// W&B run; it returns the run's result.
func (g *Growing) Sync(t *testing.T) transfer.RunResult {
	t.Helper()
	ctx := context.Background()
	src := OpenWandb(t, g.Dir)
	defer src.Close()
	dst, done := g.Sink(t)
	opt := transfer.Options{Ledger: g.Ledger, Backoff: func(int) time.Duration { return time.Millisecond }}
	if g.Options != nil {
		g.Options(&opt)
	}
	rep, err := transfer.Copy(ctx, src, dst, opt)
	if done != nil {
		if cerr := done(); err == nil {
			err = cerr
		}
	}
	if err != nil || rep.Totals.Failed != 0 || len(rep.Runs) != 1 {
		t.Fatalf("sync: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	back := g.Read(t)
	defer back.Close()
	res, err := check.Run(ctx, src, back, check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs the sink after the sync: %v\n%v", err, res.Differences)
	}
	return rep.Runs[0]
}
