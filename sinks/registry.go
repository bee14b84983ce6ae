package sinks

import "github.com/runferry/runferry/internal/location"

// Factory opens a Sink from a location.
type Factory = location.Factory[Sink]

// Registry maps location schemes to sink factories.
type Registry = location.Registry[Sink]
