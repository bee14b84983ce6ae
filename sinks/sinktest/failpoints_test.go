package sinktest

import (
	"testing"

	"github.com/runferry/runferry/internal/fault"
)

// TestFailurePointsCycleKinds: whatever the stride and first operation,
// the injected failures take the three kinds in turn (a stride of 3 with
// the kind from n%3 injected permanent failures only), and stride 1 from 1
// keeps the kinds n%3 gave.
func TestFailurePointsCycleKinds(t *testing.T) {
	kinds := []fault.Kind{fault.KindRetryable, fault.KindPermanent, fault.KindFatal}
	for _, stride := range []int{1, 2, 3, 6, 7} {
		for first := 1; first <= 3; first++ {
			seen := map[fault.Kind]int{}
			var ns []int
			for n, err := range failurePoints(Opt{FailureStride: stride, FailureFirst: first}, 40) {
				ns = append(ns, n)
				seen[fault.KindOf(err)]++
				if stride == 1 && first == 1 && fault.KindOf(err) != kinds[n%3] {
					t.Errorf("stride 1: operation %d gets %v, want %v", n, fault.KindOf(err), kinds[n%3])
				}
			}
			if ns[0] != first || len(ns) != (40-first)/stride+1 {
				t.Errorf("stride %d from %d: operations %v", stride, first, ns)
			}
			for _, k := range kinds {
				if seen[k] == 0 {
					t.Errorf("stride %d from %d: no %v failure among %d", stride, first, k, len(ns))
				}
			}
		}
	}
}
