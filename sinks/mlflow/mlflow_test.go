package mlflow_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	mlsrc "github.com/runferry/runferry/sources/mlflow"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var prefixes atomic.Int64

// pair returns a sink writing to url under a fresh experiment prefix and a
// function opening the MLflow source that reads back that prefix, deleted
// runs included.
func pair(t *testing.T, url string) (*mlflow.Sink, func() sources.Source, string) {
	t.Helper()
	return pairWithPrefix(t, url, fmt.Sprintf("t%d-%d/", prefixes.Add(1), testenv.FreePort(t)))
}

// pairWithPrefix is pair with a given experiment prefix.
func pairWithPrefix(t *testing.T, url, prefix string) (*mlflow.Sink, func() sources.Source, string) {
	t.Helper()
	s, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: url}, ExperimentPrefix: prefix, MaxInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	read := func() sources.Source {
		src, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: url}, ExperimentPrefix: prefix, Deleted: true})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	return s, read, prefix
}

func TestConformance(t *testing.T) {
	t.Parallel() // no package variable set; its own names on shared servers (docs/TESTING.md, tt14)
	srv := testenv.SharedMLflow(t)
	var last string
	sinktest.Run(t, sinktest.Opt{
		New: func(t *testing.T) (sinks.Sink, func() sources.Source) {
			s, read, prefix := pair(t, srv.URL)
			last = prefix
			return s, read
		},
		Reopen: func(t *testing.T) sinks.Sink {
			s, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: last})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		FailureStride: 7,
	})
}
