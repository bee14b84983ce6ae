package schema

import (
	"encoding/binary"
	"hash/maphash"
	"math"
)

// KeyStats summarises the history of one metric key so that two histories
// can be compared without holding either in memory. Points may be added in
// any order: the digest is order-independent, but counts a point twice if it
// is added twice.
type KeyStats struct {
	Count      int64
	FirstStep  int64
	LastStep   int64
	Min, Max   float64 // over non-NaN values; NaN when every value is NaN
	Last       float64 // value of the point with the greatest (step, time)
	lastTime   int64
	Digest     uint64 // sum of per-point hashes of (step, time, value bits)
	NaNs, Infs int64
}

var digestSeed = maphash.MakeSeed()

// Add accounts for one point.
func (s *KeyStats) Add(m Metric) {
	if s.Count == 0 {
		s.FirstStep, s.LastStep = m.Step, m.Step
		s.Min, s.Max = math.NaN(), math.NaN()
		s.Last, s.lastTime = m.Value, m.Time
	}
	s.Count++
	s.FirstStep = min(s.FirstStep, m.Step)
	if m.Step > s.LastStep || (m.Step == s.LastStep && m.Time >= s.lastTime) {
		s.LastStep, s.lastTime, s.Last = m.Step, m.Time, m.Value
	}
	switch {
	case math.IsNaN(m.Value):
		s.NaNs++
	default:
		if math.IsInf(m.Value, 0) {
			s.Infs++
		}
		if math.IsNaN(s.Min) || m.Value < s.Min {
			s.Min = m.Value
		}
		if math.IsNaN(s.Max) || m.Value > s.Max {
			s.Max = m.Value
		}
	}
	s.Digest += PointHash(m)
}

// PointHash hashes a point's step, time and value bits (all NaNs hash
// alike). The seed is fixed per process, so hashes are comparable within one
// runferry invocation only.
func PointHash(m Metric) uint64 {
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(m.Step))
	binary.LittleEndian.PutUint64(b[8:], uint64(m.Time))
	v := math.Float64bits(m.Value)
	if math.IsNaN(m.Value) {
		v = 0x7ff8000000000001
	}
	binary.LittleEndian.PutUint64(b[16:], v)
	return maphash.Bytes(digestSeed, b[:])
}

// Equal reports whether two summaries describe the same multiset of points.
func (s KeyStats) Equal(o KeyStats) bool {
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	return s.Count == o.Count && s.FirstStep == o.FirstStep && s.LastStep == o.LastStep &&
		same(s.Min, o.Min) && same(s.Max, o.Max) && s.Digest == o.Digest &&
		s.NaNs == o.NaNs && s.Infs == o.Infs
}
