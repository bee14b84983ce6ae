package memory_test

import (
	"testing"

	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
)

func TestConformance(t *testing.T) {
	sinktest.Run(t, sinktest.Opt{
		New: func(t *testing.T) (sinks.Sink, func() sources.Source) {
			s := memory.New(sinks.Limits{MaxInFlight: 2, MaxMetricsPerWrite: 1000})
			return s, func() sources.Source { return s.Source() }
		},
	})
}
