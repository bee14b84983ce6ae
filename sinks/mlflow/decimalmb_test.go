package mlflow_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestSystemMetricsInDecimalMB: W&B's byte counters (network.sent and
// network.recv, whole bytes) and the root disk's usageGB (bytes / 2³⁰)
// of the Tarun sample arrive in MLflow, read through its REST API, as the
// double nearest their decimal MB, as MLflow's own monitors' bytes / 1e6
// gives them: 257622 bytes show as 0.257622 in MLflow's UI, not
// 0.25762199999999996 (bytes × 1e-6, before the fix; this test failed
// then). The decimal is made from the integer's digits, not by floating
// point. The copy checks clean (copyAndRead).
func TestSystemMetricsInDecimalMB(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	dir := testenv.Samples(t, "wandb/Tarun-AK__scaling/wandb")
	runs, _, api := copyAndRead(t, srv, openWandb(t, dir), false)
	run, ok := runs["klt5o1bl"]
	if !ok {
		t.Fatalf("run klt5o1bl not copied: %v", runs)
	}
	src := openWandb(t, dir)
	wandb := map[string]map[int64]float64{}
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			for page, err := range src.Metrics(ctx, r.Origin) {
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page {
					if wandb[m.Key] == nil {
						wandb[m.Key] = map[int64]float64{}
					}
					wandb[m.Key][m.Step] = m.Value
				}
			}
		}
	}
	for mk, c := range map[string]struct {
		key   string
		bytes float64 // bytes per W&B unit
	}{
		"system/network_transmit_megabytes": {"system/network.sent", 1},
		"system/network_receive_megabytes":  {"system/network.recv", 1},
		"system/disk_usage_megabytes":       {"system/disk./.usageGB", 1 << 30},
	} {
		want := wandb[c.key]
		n, nonzero := 0, 0
		for page, err := range api.MetricHistory(ctx, run.Info.RunID, mk) {
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				n++
				w, ok := want[m.Step]
				b := w * c.bytes
				if !ok || b != math.Trunc(b) || b < 0 || b >= 1<<53 {
					t.Fatalf("%s at step %d: W&B's %s there is %v (%v bytes), not a whole number of bytes", mk, m.Step, c.key, w, b)
				}
				s := fmt.Sprintf("%07d", uint64(b))
				dec := s[:len(s)-6] + "." + s[len(s)-6:]
				exact, _ := strconv.ParseFloat(dec, 64)
				if float64(m.Value) != exact {
					t.Errorf("%s at step %d = %v, want %s (W&B's %s: %v)", mk, m.Step, float64(m.Value), dec, c.key, w)
				}
				if b != 0 {
					nonzero++
				}
			}
		}
		if n == 0 || n != len(want) || nonzero == 0 {
			t.Errorf("%s: %d points (%d not 0), W&B's %s has %d", mk, n, nonzero, c.key, len(want))
		}
	}
}
