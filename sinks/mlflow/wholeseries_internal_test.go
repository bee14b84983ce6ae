package mlflow

import (
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// TestAppendPlanWholeSeries: a W&B run whose metrics are plotted against a
// step metric (or whose copy holds re-based steps) is appended to, but
// any new point, of any key, refuses the append (the run is then written
// whole, its steps re-based with the whole series), while a run without
// a step metric takes a new point after the last step held.
func TestAppendPlanWholeSeries(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	plain := schema.Run{Origin: schema.Ref{System: "wandb", ID: "e/p/r1"}, Name: "r1", Start: start, Status: schema.StatusFinished}
	axis := plain
	axis.Tags = []schema.Tag{{Key: mlflowconv.StepAxisTagPrefix + "val/*", Value: "epoch"}}
	last := map[string]int64{"val/acc": 2, "epoch": 2, "train/loss": 4}
	newPoint := schema.Metric{Key: "train/loss", Step: 5, Value: 0.3}
	for _, c := range []struct {
		name    string
		r       schema.Run
		cov     mlflowconv.Coverage
		refused bool
	}{
		{"no step metric", plain, mlflowconv.Coverage{}, false},
		{"a step metric", axis, mlflowconv.Coverage{}, true},
		{"a copy holding re-based steps", plain, mlflowconv.Coverage{Rebased: []mlflowconv.Rebase{{Key: "val/acc", Axis: "epoch"}}}, true},
	} {
		p, why := appendable(c.r, mlflowconv.SidecarVersion, c.r, c.cov, last, nil, false)
		if why != "" {
			t.Errorf("%s: not appendable: %s", c.name, why)
			continue
		}
		got := p.point(newPoint)
		if c.refused != (got != "") || c.refused && !strings.Contains(got, "re-based") {
			t.Errorf("%s: a new point after the last step: refused %q, want refused %v", c.name, got, c.refused)
		}
	}
	deleted := plain
	deleted.Deleted = true
	if _, why := appendable(plain, mlflowconv.SidecarVersion, deleted, mlflowconv.Coverage{}, last, nil, false); why != deletedUnappendable {
		t.Errorf("a run deleted in the source: %q, want %q", why, deletedUnappendable)
	}
}
