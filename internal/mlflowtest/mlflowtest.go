// Package mlflowtest holds what the tests of several packages do alike
// with a real MLflow server's REST API. It is for tests only.
package mlflowtest

import (
	"context"
	"iter"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// Client returns a client of the MLflow server at base (http://HOST:PORT);
// one it cannot make fails the test.
func Client(t testing.TB, base string) *mlflowapi.Client {
	t.Helper()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// Runs yields, with its experiment, every run in runView
// (mlflowapi.ViewActive, ViewDeleted or ViewAll) of every experiment,
// active or deleted, whose name begins with prefix, on the server api
// talks to: experiments in id order, each one's runs in start-time order.
// An error from the server fails the test (t.Fatal), so the loop must run
// on the test's goroutine.
func Runs(t testing.TB, api *mlflowapi.Client, prefix, runView string) iter.Seq2[mlflowapi.Experiment, mlflowapi.Run] {
	return func(yield func(mlflowapi.Experiment, mlflowapi.Run) bool) {
		t.Helper()
		ctx := context.Background()
		for e, err := range api.SearchExperiments(ctx, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatalf("search experiments: %v", err)
			}
			if !strings.HasPrefix(e.Name, prefix) {
				continue
			}
			for r, err := range api.SearchRuns(ctx, []string{e.ExperimentID}, "", runView) {
				if err != nil {
					t.Fatalf("search runs of experiment %s: %v", e.Name, err)
				}
				if !yield(e, r) {
					return
				}
			}
		}
	}
}
