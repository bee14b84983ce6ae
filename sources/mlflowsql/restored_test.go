package mlflowsql_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	sinksall "github.com/runferry/runferry/sinks/all"
	"github.com/runferry/runferry/sources"
)

// fixtures are the W&B runs of testdata/wandb/fixtures; the SIGKILLed one
// is judged crashed whatever its files' times.
const fixtures = "wandb:../../testdata/wandb/fixtures?crashed-after=1ns"

// TestRunferryCopiesRestored: W&B runs that runferry copied into a real
// MLflow server with a SQLite store read, from that database directly, as
// through the server: restored from runferry's sidecars (their W&B origins,
// config, summary, console output, non-numeric values; check finds them
// equal to the W&B runs themselves), equal by check both ways to the
// server's. Without ?artifacts= the sidecars are not reachable: each run
// is read as MLflow holds it, its damage saying why and what to give, and
// the report counts the runs whose files were not read.
func TestRunferryCopiesRestored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := testenv.StartMLflow(t)
	server := "mlflow+http://127.0.0.1:" + strconv.Itoa(srv.Port)
	dst, _, err := sinksall.Sinks().Open(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(ctx, mustOpen(t, fixtures), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 6 {
		t.Fatalf("copy the W&B fixtures into MLflow: %v %+v", err, rep.Totals)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(srv.BackendURI, "sqlite:///")
	store := "mlflow+sqlite:" + db + "?instance=127.0.0.1:" + strconv.Itoa(srv.Port)

	res := assertSame(t, store+"&artifacts="+srv.ArtifactDir, server)
	if res.Runs != 6 || res.Points == 0 {
		t.Errorf("compared %d runs, %d points; want the 6 W&B runs", res.Runs, res.Points)
	}
	res, err = check.Run(ctx, mustOpen(t, fixtures), mustOpen(t, store+"&artifacts="+srv.ArtifactDir), check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Differences {
		t.Errorf("check %s %s: %s", fixtures, store, d)
	}
	if res.Runs != 6 {
		t.Errorf("check against the W&B runs compared %d runs, want 6", res.Runs)
	}

	src := mustOpen(t, store)
	runs := 0
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			runs++
			if r.Origin.System != "wandb" {
				t.Errorf("run %s: origin system %q, want wandb (runferry.origin)", r.Name, r.Origin.System)
			}
			if d := strings.Join(r.Damage, "\n"); !strings.Contains(d, "written by runferry") || !strings.Contains(d, "?artifacts=") || strings.Contains(d, "is missing") {
				t.Errorf("run %s read without ?artifacts=: damage %q; want why runferry's files were not applied", r.Name, r.Damage)
			}
		}
	}
	if runs != 6 {
		t.Errorf("read %d runs without ?artifacts=, want 6", runs)
	}
	om := src.(sources.Omitter).Omitted(ctx)
	if n := om["runs whose files were not read: mlflow-artifacts: locations, and no ?artifacts=FOLDER given (the server's --artifacts-destination)"]; n != 6 {
		t.Errorf("Omitted = %v; want the 6 runs whose files were not read", om)
	}
}
