package sources

import "github.com/runferry/runferry/internal/location"

// Factory opens a Source from a location.
type Factory = location.Factory[Source]

// Registry maps location schemes to source factories.
type Registry = location.Registry[Source]
