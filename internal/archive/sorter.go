package archive

import (
	"bufio"
	"cmp"
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/runferry/runferry/schema"
)

// metricSorter puts a run's points into archive order (key, then step,
// then arrival) in bounded memory: points collect in a buffer of at most
// limit entries; a full buffer is sorted and spilled to a temporary file of
// fixed-size records; finish merges the spills (and the last buffer) into
// the metrics file. Memory is the buffer plus one read buffer per spill,
// whatever the size of the run. Key names are kept once in memory.
type metricSorter struct {
	dir    string // where spill files go
	limit  int
	keys   map[string]uint32
	names  []string
	buf    []point
	spills []string
	count  int64
}

// point is one buffered metric; key is an index into names, seq the
// arrival order within the buffer.
type point struct {
	key  uint32
	seq  uint32
	step int64
	time int64
	val  float64
}

const spillRecord = 28 // key u32, step i64, time i64, value bits u64

func newMetricSorter(dir string, limit int) *metricSorter {
	return &metricSorter{dir: dir, limit: limit, keys: map[string]uint32{}}
}

func (s *metricSorter) add(batch []schema.Metric) error {
	for _, m := range batch {
		id, ok := s.keys[m.Key]
		if !ok {
			id = uint32(len(s.names))
			s.keys[m.Key] = id
			s.names = append(s.names, m.Key)
		}
		if s.buf == nil {
			s.buf = make([]point, 0, min(s.limit, 4096))
		}
		s.buf = append(s.buf, point{key: id, seq: uint32(len(s.buf)), step: m.Step, time: m.Time, val: m.Value})
		s.count++
		if len(s.buf) >= s.limit {
			if err := s.spill(); err != nil {
				return err
			}
		}
	}
	return nil
}

// ranks maps key ids to their position in sorted key order.
func (s *metricSorter) ranks() []uint32 {
	order := make([]uint32, len(s.names))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(s.names[a], s.names[b]) })
	rank := make([]uint32, len(s.names))
	for r, id := range order {
		rank[id] = uint32(r)
	}
	return rank
}

func (s *metricSorter) sortBuf(rank []uint32) {
	slices.SortFunc(s.buf, func(a, b point) int {
		if c := cmp.Compare(rank[a.key], rank[b.key]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.step, b.step); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
}

func (s *metricSorter) spill() error {
	s.sortBuf(s.ranks())
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, "spill-*"+tmpSuffix)
	if err != nil {
		return err
	}
	s.spills = append(s.spills, f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	var rec [spillRecord]byte
	for _, p := range s.buf {
		binary.LittleEndian.PutUint32(rec[0:], p.key)
		binary.LittleEndian.PutUint64(rec[4:], uint64(p.step))
		binary.LittleEndian.PutUint64(rec[12:], uint64(p.time))
		binary.LittleEndian.PutUint64(rec[20:], math.Float64bits(p.val))
		bw.Write(rec[:])
	}
	err = bw.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.buf = s.buf[:0]
	if err != nil {
		return fmt.Errorf("spilling metrics: %w", err)
	}
	return nil
}

// finish calls emit with every point in archive order, in chunks, then
// removes the spill files.
func (s *metricSorter) finish(emit func(key string, pts []point) error) error {
	defer s.discard()
	rank := s.ranks()
	if len(s.spills) == 0 {
		s.sortBuf(rank)
		for i := 0; i < len(s.buf); {
			j := i
			for j < len(s.buf) && s.buf[j].key == s.buf[i].key && j-i < 4096 {
				j++
			}
			if err := emit(s.names[s.buf[i].key], s.buf[i:j]); err != nil {
				return err
			}
			i = j
		}
		return nil
	}
	if len(s.buf) > 0 {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.buf = nil
	return s.merge(rank, emit)
}

func (s *metricSorter) discard() {
	for _, p := range s.spills {
		os.Remove(p)
	}
	s.spills = nil
	s.buf = nil
}

// spillReader reads one spill file's records in order.
type spillReader struct {
	r   *bufio.Reader
	f   *os.File
	idx int
	cur point
}

func (sr *spillReader) next() (bool, error) {
	var rec [spillRecord]byte
	if _, err := io.ReadFull(sr.r, rec[:]); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, fmt.Errorf("reading metric spill %s: %w", sr.f.Name(), err)
	}
	sr.cur = point{key: binary.LittleEndian.Uint32(rec[0:]), step: int64(binary.LittleEndian.Uint64(rec[4:])),
		time: int64(binary.LittleEndian.Uint64(rec[12:])), val: math.Float64frombits(binary.LittleEndian.Uint64(rec[20:]))}
	return true, nil
}

type spillHeap struct {
	rs   []*spillReader
	rank []uint32
}

func (h *spillHeap) Len() int { return len(h.rs) }
func (h *spillHeap) Less(i, j int) bool {
	a, b := h.rs[i], h.rs[j]
	if ra, rb := h.rank[a.cur.key], h.rank[b.cur.key]; ra != rb {
		return ra < rb
	}
	if a.cur.step != b.cur.step {
		return a.cur.step < b.cur.step
	}
	return a.idx < b.idx // earlier spill holds earlier arrivals: stable
}
func (h *spillHeap) Swap(i, j int) { h.rs[i], h.rs[j] = h.rs[j], h.rs[i] }
func (h *spillHeap) Push(x any)    { h.rs = append(h.rs, x.(*spillReader)) }
func (h *spillHeap) Pop() any {
	x := h.rs[len(h.rs)-1]
	h.rs = h.rs[:len(h.rs)-1]
	return x
}

func (s *metricSorter) merge(rank []uint32, emit func(string, []point) error) error {
	h := &spillHeap{rank: rank}
	defer func() {
		for _, r := range h.rs {
			r.f.Close()
		}
	}()
	for i, p := range s.spills {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		sr := &spillReader{r: bufio.NewReaderSize(f, 64<<10), f: f, idx: i}
		ok, err := sr.next()
		if err != nil {
			f.Close()
			return err
		}
		if !ok {
			f.Close()
			continue
		}
		h.rs = append(h.rs, sr)
	}
	heap.Init(h)
	out := make([]point, 0, 4096)
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		err := emit(s.names[out[0].key], out)
		out = out[:0]
		return err
	}
	for h.Len() > 0 {
		top := h.rs[0]
		if len(out) == cap(out) || (len(out) > 0 && out[0].key != top.cur.key) {
			if err := flush(); err != nil {
				return err
			}
		}
		out = append(out, top.cur)
		ok, err := top.next()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			top.f.Close()
			heap.Pop(h)
		}
	}
	return flush()
}
