package all_test

import (
	"testing"

	"github.com/runferry/runferry/internal/adaptertest"
	"github.com/runferry/runferry/sources/all"
)

// TestEverySourceIsConformant: every registered source's package runs
// sourcetest, and README.md and docs/ADAPTERS.md name its scheme.
func TestEverySourceIsConformant(t *testing.T) {
	adaptertest.Check(t, all.Sources().Factories(), "sourcetest.Run(")
}
