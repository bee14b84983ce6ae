package sinks

import (
	"slices"
	"sync"

	"github.com/runferry/runferry/schema"
)

// FormerOrigins keeps what the engine passed to SetFormerOrigins, for sinks
// that embed it to implement FormerOriginsSetter. It is safe for concurrent
// use; the zero value is ready.
type FormerOrigins struct {
	mu sync.Mutex
	m  map[schema.Ref][]schema.Ref
}

// SetFormerOrigins records the former origins of origin.
func (f *FormerOrigins) SetFormerOrigins(origin schema.Ref, former []schema.Ref) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[schema.Ref][]schema.Ref{}
	}
	f.m[origin] = slices.Clone(former)
}

// FormerOf returns the former origins recorded for origin.
func (f *FormerOrigins) FormerOf(origin schema.Ref) []schema.Ref {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.m[origin])
}

// FormerKeys returns the former origins recorded for origin in their
// stored form ("system:id").
func (f *FormerOrigins) FormerKeys(origin schema.Ref) []string {
	var out []string
	for _, r := range f.FormerOf(origin) {
		out = append(out, r.String())
	}
	return out
}
