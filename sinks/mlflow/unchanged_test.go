package mlflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// fingerprinted is a memory source that gives every run the fingerprint
// fp (a source moved elsewhere gives new fingerprints to the same runs).
type fingerprinted struct {
	*memsrc.Source
	fp string
}

func (f fingerprinted) Fingerprint(context.Context, schema.Run) (string, error) { return f.fp, nil }

// TestNoChangeAppendWritesNothing: the canonical dataset copied into a
// real MLflow server, then copied again with a new ledger from a source
// that gives its runs new fingerprints and nothing else new: every run
// that is neither RUNNING nor deleted is appended to with nothing new, so
// the sink sends no write to it at all (a recording proxy sees every
// request) and the run is reported unchanged. The RUNNING run is written
// again (as every sync of a live run is), and so is every run when the
// source gives no fingerprint (it vouches for nothing). The deleted run
// is not appended to (MLflow refuses writes to deleted runs). Before:
// every run was appended to, its run.json, coverage.json and tags
// rewritten, and reported copied.
func TestNoChangeAppendWritesNothing(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	proxy := newRecordingProxy(t, srv.URL)
	dst, _, _ := pair(t, proxy.srv.URL)
	d := dataset.Canonical()
	copyWith := func(fp string) *transfer.Report {
		t.Helper()
		opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return time.Millisecond }}
		rep, err := transfer.Copy(ctx, fingerprinted{memsrc.New(d), fp}, dst, opt)
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("copy with fingerprint %q: %v %+v", fp, err, rep.Totals)
		}
		return rep
	}
	first := copyWith("v1")
	ids := map[string]string{}
	for _, r := range first.Runs {
		ids[r.Origin] = r.DestID
	}
	proxy.take()
	kind := func(origin string) string {
		for _, rd := range d.Runs {
			switch {
			case rd.Run.Origin.String() != origin:
			case rd.Run.Deleted:
				return "deleted"
			case rd.Run.Status == schema.StatusRunning:
				return "running"
			default:
				return "ended"
			}
		}
		t.Fatalf("run %s is not in the dataset", origin)
		return ""
	}
	for _, fp := range []string{"v2", ""} {
		rep := copyWith(fp)
		reqs := proxy.take()
		var unchanged int
		for _, r := range rep.Runs {
			writes := writesTo(t, reqs, ids[r.Origin])
			var log []string
			for _, w := range writes {
				log = append(log, w.String())
			}
			k := kind(r.Origin)
			switch {
			case k == "ended" && fp != "":
				if r.Outcome != transfer.Unchanged || r.DestID != ids[r.Origin] || len(writes) != 0 {
					t.Errorf("fingerprint %q, ended run %s: %s to %s (%s), %d writes to its copy %s; want unchanged, no write:\n%s",
						fp, r.Origin, r.Outcome, r.DestID, r.Reason, len(writes), ids[r.Origin], strings.Join(log, "\n"))
				}
				unchanged++
			case k == "deleted":
				if r.Outcome != transfer.Committed || r.Appended {
					t.Errorf("fingerprint %q, deleted run %s: %s, appended %v (%s); want written anew", fp, r.Origin, r.Outcome, r.Appended, r.Reason)
				}
			default:
				if r.Outcome != transfer.Committed || !r.Appended || r.DestID != ids[r.Origin] || len(writes) == 0 {
					t.Errorf("fingerprint %q, %s run %s: %s, appended %v to %s (%s), %d writes; want appended to %s, written",
						fp, k, r.Origin, r.Outcome, r.Appended, r.DestID, r.Reason, len(writes), ids[r.Origin])
				}
			}
			if r.Outcome == transfer.Committed && !r.Appended {
				ids[r.Origin] = r.DestID
			}
		}
		if fp != "" && unchanged == 0 {
			t.Fatalf("no ended run in the dataset")
		}
	}
}
