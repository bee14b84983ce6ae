package memory_test

import (
	"testing"

	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/memory"
	"github.com/runferry/runferry/sources/sourcetest"
)

func TestConformance(t *testing.T) {
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(*testing.T) sources.Source { return memory.New(dataset.Canonical()) },
		Want: dataset.Canonical(),
		Skip: map[string]string{"OriginsNameTheInstance": "a memory source yields the dataset it is given, origins included: it has no instance"},
	})
}
