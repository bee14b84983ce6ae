package mlflowapi

import (
	"context"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestRunSearchPageIsTheServersMaximum: a real MLflow server accepts
// runs/search pages of RunSearchPageSize runs and refuses one more, so
// SearchRuns lists with the fewest round trips the server allows.
func TestRunSearchPageIsTheServersMaximum(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	c, err := New(Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	expID, err := c.CreateExperiment(ctx, "searchpage-"+strings.ReplaceAll(t.Name(), "/", "-")+"-"+srv.URL[strings.LastIndex(srv.URL, ":")+1:], nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c2 := range []struct {
		size int
		ok   bool
	}{{RunSearchPageSize, true}, {RunSearchPageSize + 1, false}} {
		var out struct{}
		err := c.post(ctx, idempotent, api+"runs/search", SearchRuns{ExperimentIDs: []string{expID}, MaxResults: c2.size}, &out)
		if (err == nil) != c2.ok {
			t.Errorf("runs/search with max_results %d: %v; want accepted %v", c2.size, err, c2.ok)
		}
	}
	n := 0
	for _, err := range c.SearchRuns(ctx, []string{expID}, "", ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("listed %d runs of an empty experiment", n)
	}
}
