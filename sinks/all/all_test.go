package all_test

import (
	"testing"

	"github.com/runferry/runferry/internal/adaptertest"
	"github.com/runferry/runferry/sinks/all"
)

// TestEverySinkIsConformant: every registered sink's package runs sinktest,
// and README.md and docs/ADAPTERS.md name its scheme.
func TestEverySinkIsConformant(t *testing.T) {
	adaptertest.Check(t, all.Sinks().Factories(), "sinktest.Run(")
}
