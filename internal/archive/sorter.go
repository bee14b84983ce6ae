package archive

import (
	"bufio"
	"cmp"
	"container/heap"
	"fmt"
	"math/bits"
	"os"
	"slices"
	"sync"
	"unsafe"

	"github.com/runferry/runferry/schema"
)

// metricSorter puts a run's points into archive order (key, then step,
// then arrival) in bounded memory.
//
// Points are appended, in arrival order, to per-key chunks carved from an
// arena of at most limit points (24 bytes each); so a key's points are
// already grouped, and they are already in step order whenever the source
// delivers each key's steps in non-decreasing order (which the sorter
// notices; only a key that goes back in steps is stable-sorted). When the
// arena is full, every key's points are written, key after key, to one
// temporary spill file as a sorted segment, and the arena is reused. finish
// then emits key after key: a key whose segments follow each other in step
// order (the usual case) is streamed segment after segment; otherwise its
// segments are merged (ties go to the earlier segment, which holds earlier
// arrivals). Memory is the arena, whatever the size of the run; key names
// are kept once in memory.
type metricSorter struct {
	dir   string // where the spill file goes
	limit int    // arena size in points
	arena arena

	keys  map[string]uint32
	names []string
	per   []keyBuf // by key id
	prev  uint32   // id of the previous point's key
	count int64

	spill  *os.File
	spillN int64       // bytes written to spill
	segs   [][]segment // by key id: its spilled segments, in spill order
	tmp    []pt        // scratch for sorting one key's points
}

// pt is one metric point without its key.
type pt struct {
	step int64
	time int64
	val  float64
}

const ptSize = int64(unsafe.Sizeof(pt{}))

// Chunk sizes: a key's first chunk holds minChunk points, each further one
// twice the previous, up to maxChunk; so a run with very many keys still
// fills the arena before it spills.
const (
	minChunk = 16
	maxChunk = 4096
)

// keyBuf is one key's points in the arena, in arrival order.
type keyBuf struct {
	full     [][]pt // filled chunks
	cur      []pt   // chunk being filled (len < cap), nil before the first point
	n        int    // points held
	size     int    // capacity of the latest chunk
	lastStep int64
	unsorted bool // a step went back: the points need a stable sort
	next     uint32
	hasNext  bool // next guesses the key that follows this one
}

// segment is one key's sorted points in the spill file.
type segment struct {
	off, n      int64 // byte offset, points
	first, last int64 // steps of the first and last point
}

// arena hands out chunks from blocks totalling at most limit points; reset
// makes all of it free again. Blocks are allocated as needed, so a small run
// costs little memory.
type arena struct {
	limit   int
	total   int
	blocks  [][]pt
	bi, off int // next free point: block, offset
}

// alloc returns an empty chunk of capacity n, or nil if the arena is full.
func (a *arena) alloc(n int) []pt {
	for {
		if a.bi < len(a.blocks) {
			if b := a.blocks[a.bi]; a.off+n <= len(b) {
				c := b[a.off : a.off : a.off+n]
				a.off += n
				return c
			}
			a.bi, a.off = a.bi+1, 0
			continue
		}
		room := a.limit - a.total
		if room < n {
			return nil
		}
		size := min(room, max(n, 1<<12, a.total))
		a.blocks = append(a.blocks, newBlock(size))
		a.total += size
	}
}

func (a *arena) reset() { a.bi, a.off = 0, 0 }

// release gives the arena's blocks back for later arenas (blockPools) and
// empties the arena. Nothing may use its chunks afterwards.
func (a *arena) release() {
	for _, b := range a.blocks {
		freeBlock(b)
	}
	*a = arena{limit: a.limit}
}

// blockPools hold freed arena blocks by size, one pool per power of two
// (the sizes an arena of SortBufferPoints asks for: 4096, 4096, 8192, ...):
// a run's arena, up to SortBufferPoints points (24 MiB), was allocated and
// zeroed anew for every run, though the run before had just freed one.
// A block's old points are never read: chunks are handed out empty and
// appended to. Other sizes (the last block of an arena whose limit is not
// such a sum, only in tests) are left to the collector.
var blockPools [40]sync.Pool

// newBlock returns a block of size points, from blockPools when one is free.
func newBlock(size int) []pt {
	if size > 0 && size&(size-1) == 0 && bits.TrailingZeros(uint(size)) < len(blockPools) {
		if b, ok := blockPools[bits.TrailingZeros(uint(size))].Get().(*[]pt); ok {
			return *b
		}
	}
	return make([]pt, size)
}

// freeBlock puts b into blockPools if its size is a power of two.
func freeBlock(b []pt) {
	if size := len(b); size > 0 && size&(size-1) == 0 && bits.TrailingZeros(uint(size)) < len(blockPools) {
		b = b[:size:size]
		blockPools[bits.TrailingZeros(uint(size))].Put(&b)
	}
}

func newMetricSorter(dir string, limit int) *metricSorter {
	return &metricSorter{dir: dir, limit: max(limit, 1), arena: arena{limit: max(limit, 1)}, keys: map[string]uint32{}}
}

// id returns the key id of name, registering a new key. Sources deliver
// keys in a repeating order (a W&B history row lists the same keys each
// time), so the key that followed the previous one last time is tried
// before the map.
func (s *metricSorter) id(name string) uint32 {
	havePrev := s.count > 0
	if havePrev {
		if p := &s.per[s.prev]; p.hasNext && s.names[p.next] == name {
			return p.next
		}
	}
	id, ok := s.keys[name]
	if !ok {
		id = uint32(len(s.names))
		s.keys[name] = id
		s.names = append(s.names, name)
		s.per = append(s.per, keyBuf{})
	}
	if havePrev {
		p := &s.per[s.prev]
		p.next, p.hasNext = id, true
	}
	return id
}

func (s *metricSorter) add(batch []schema.Metric) error {
	for i := range batch {
		m := &batch[i]
		id := s.id(m.Key)
		s.prev = id
		kb := &s.per[id]
		if len(kb.cur) == cap(kb.cur) {
			if kb.cur != nil {
				kb.full, kb.cur = append(kb.full, kb.cur), nil
				kb.size = min(2*kb.size, maxChunk)
			}
			size := min(max(kb.size, minChunk), s.limit)
			kb.size = size
			c := s.arena.alloc(size)
			if c == nil {
				if err := s.spillAll(); err != nil {
					return err
				}
				kb = &s.per[id]
				if c = s.arena.alloc(size); c == nil {
					return fmt.Errorf("metric sorter: chunk of %d points does not fit a buffer of %d", size, s.limit)
				}
			}
			kb.cur = c
		}
		if kb.n > 0 && m.Step < kb.lastStep {
			kb.unsorted = true
		}
		kb.lastStep = m.Step
		kb.cur = append(kb.cur, pt{step: m.Step, time: m.Time, val: m.Value})
		kb.n++
		s.count++
	}
	return nil
}

// order returns key ids in the order of their names.
func (s *metricSorter) order() []uint32 {
	order := make([]uint32, len(s.names))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(s.names[a], s.names[b]) })
	return order
}

// sorted returns kb's points in step order, stable: its chunks as they are,
// or one chunk sorted in s.tmp.
func (s *metricSorter) sorted(kb *keyBuf) [][]pt {
	chunks := kb.full
	if len(kb.cur) > 0 {
		chunks = append(chunks, kb.cur)
	}
	if !kb.unsorted {
		return chunks
	}
	s.tmp = s.tmp[:0]
	for _, c := range chunks {
		s.tmp = append(s.tmp, c...)
	}
	slices.SortStableFunc(s.tmp, func(a, b pt) int { return cmp.Compare(a.step, b.step) })
	return [][]pt{s.tmp}
}

// release forgets kb's points (their chunks go back with the arena reset).
func (kb *keyBuf) release() {
	clear(kb.full)
	kb.full, kb.cur, kb.n, kb.unsorted = kb.full[:0], nil, 0, false
}

// ptBytes views points as bytes. Spill files are read back by the process
// that wrote them, so the native layout is the file format.
func ptBytes(p []pt) []byte {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&p[0])), len(p)*int(ptSize))
}

// spillAll writes every key's points to the spill file as one sorted
// segment per key, and frees the arena.
func (s *metricSorter) spillAll() error {
	if s.spill == nil {
		if err := os.MkdirAll(s.dir, dirMode); err != nil {
			return err
		}
		f, err := createTemp(s.dir, "spill-", tmpSuffix)
		if err != nil {
			return err
		}
		s.spill = f
	}
	bw := bufio.NewWriterSize(s.spill, 256<<10)
	for len(s.segs) < len(s.per) {
		s.segs = append(s.segs, nil)
	}
	for id := range s.per {
		kb := &s.per[id]
		if kb.n == 0 {
			continue
		}
		chunks := s.sorted(kb)
		seg := segment{off: s.spillN, n: int64(kb.n), first: chunks[0][0].step}
		last := chunks[len(chunks)-1]
		seg.last = last[len(last)-1].step
		for _, c := range chunks {
			if _, err := bw.Write(ptBytes(c)); err != nil {
				return fmt.Errorf("spilling metrics: %w", err)
			}
		}
		s.spillN += seg.n * ptSize
		s.segs[id] = append(s.segs[id], seg)
		kb.release()
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("spilling metrics: %w", err)
	}
	s.arena.reset()
	return nil
}

// spillRest spills what the arena holds (once the spill file exists, every
// point goes there) and frees the arena, whose largest block it returns to
// serve as read buffers (at least 2*emitBatch points).
func (s *metricSorter) spillRest() ([]pt, error) {
	if s.per != nil {
		if err := s.spillAll(); err != nil {
			return nil, err
		}
	}
	var buf []pt
	for _, b := range s.arena.blocks {
		if len(b) > len(buf) {
			buf = b
		}
	}
	// Not given to blockPools: pooled blocks count as live to the
	// collector's pacing, and a spilled run's peak RSS rose with them
	// (BenchmarkWriteMetrics of 4 Mi points: 194-209 MB -> 227-278 MB).
	s.arena = arena{}
	s.per, s.tmp = nil, nil
	if len(buf) < 2*emitBatch {
		buf = make([]pt, 2*emitBatch)
	}
	return buf, nil
}

// piece is one spilled segment in the archive order of all points: its
// points are rows start to start+seg.n-1 of the sorted output.
type piece struct {
	key   uint32
	seg   segment
	start int64
}

// layout is for writing the sorted output in parallel: if the points were
// spilled and every key's segments follow each other in step order (the
// usual case), the sorted output is the concatenation of the returned
// pieces and any range of its rows can be read with emitRows, concurrently.
// Otherwise ok is false and finish must be used. finish or discard must be
// called in either case.
func (s *metricSorter) layout() (pieces []piece, ok bool, err error) {
	if s.spill == nil {
		return nil, false, nil
	}
	if _, err := s.spillRest(); err != nil {
		return nil, false, err
	}
	var start int64
	for _, id := range s.order() {
		if id >= uint32(len(s.segs)) {
			continue
		}
		if !inOrder(s.segs[id]) {
			return nil, false, nil
		}
		for _, sg := range s.segs[id] {
			pieces = append(pieces, piece{key: id, seg: sg, start: start})
			start += sg.n
		}
	}
	return pieces, true, nil
}

// emitRows calls emit with rows lo to hi-1 of the sorted output described
// by pieces (from layout), in slices of at most len(buf) points of one key.
// It may run concurrently with itself (each call with its own buf).
func (s *metricSorter) emitRows(pieces []piece, lo, hi int64, buf []pt, emit func(key string, pts []pt) error) error {
	i, _ := slices.BinarySearchFunc(pieces, lo, func(p piece, row int64) int {
		if p.start+p.seg.n <= row {
			return -1
		}
		if p.start > row {
			return 1
		}
		return 0
	})
	for ; i < len(pieces) && lo < hi; i++ {
		p := pieces[i]
		for lo < hi && lo < p.start+p.seg.n {
			n := min(hi-lo, p.start+p.seg.n-lo, int64(len(buf)))
			if err := s.readPts(buf[:n], p.seg.off+(lo-p.start)*ptSize); err != nil {
				return err
			}
			if err := emit(s.names[p.key], buf[:n]); err != nil {
				return err
			}
			lo += n
		}
	}
	return nil
}

// emitBatch is the largest slice finish passes to emit.
const emitBatch = 1 << 14

// finish calls emit with every point in archive order, key after key, in
// slices of at most emitBatch points (valid only during the call), then
// removes the spill file.
func (s *metricSorter) finish(emit func(key string, pts []pt) error) error {
	defer s.discard()
	order := s.order()
	if s.spill == nil {
		for _, id := range order {
			kb := &s.per[id]
			if kb.n == 0 {
				continue
			}
			for _, c := range s.sorted(kb) {
				for len(c) > 0 {
					n := min(len(c), emitBatch)
					if err := emit(s.names[id], c[:n]); err != nil {
						return err
					}
					c = c[n:]
				}
			}
		}
		return nil
	}
	buf, err := s.spillRest()
	if err != nil {
		return err
	}
	for _, id := range order {
		segs := s.segs[id]
		if len(segs) == 0 {
			continue
		}
		var err error
		if inOrder(segs) {
			err = s.stream(s.names[id], segs, buf[:emitBatch], emit)
		} else {
			err = s.merge(s.names[id], segs, buf, emit)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// inOrder reports whether segs, concatenated, are in step order.
func inOrder(segs []segment) bool {
	for i := 1; i < len(segs); i++ {
		if segs[i].first < segs[i-1].last {
			return false
		}
	}
	return true
}

// readPts fills p from the spill file at off.
func (s *metricSorter) readPts(p []pt, off int64) error {
	if _, err := s.spill.ReadAt(ptBytes(p), off); err != nil {
		return fmt.Errorf("reading metric spill %s: %w", s.spill.Name(), err)
	}
	return nil
}

// stream emits segs one after the other.
func (s *metricSorter) stream(key string, segs []segment, buf []pt, emit func(string, []pt) error) error {
	for _, sg := range segs {
		for i := int64(0); i < sg.n; {
			n := min(sg.n-i, int64(len(buf)))
			if err := s.readPts(buf[:n], sg.off+i*ptSize); err != nil {
				return err
			}
			if err := emit(key, buf[:n]); err != nil {
				return err
			}
			i += n
		}
	}
	return nil
}

// segReader reads one segment through a slice of the read buffer.
type segReader struct {
	s        *metricSorter
	seg      segment
	idx      int   // segment's position: ties go to the lower
	read     int64 // points read from the file
	buf, win []pt  // buffer; unconsumed window of it
}

func (r *segReader) head() pt { return r.win[0] }

// advance consumes the head point; it reports false at the segment's end.
func (r *segReader) advance() (bool, error) {
	r.win = r.win[1:]
	if len(r.win) > 0 {
		return true, nil
	}
	if r.read == r.seg.n {
		return false, nil
	}
	n := min(r.seg.n-r.read, int64(len(r.buf)))
	if err := r.s.readPts(r.buf[:n], r.seg.off+r.read*ptSize); err != nil {
		return false, err
	}
	r.read += n
	r.win = r.buf[:n]
	return true, nil
}

type segHeap []*segReader

func (h segHeap) Len() int { return len(h) }
func (h segHeap) Less(i, j int) bool {
	a, b := h[i].head().step, h[j].head().step
	return a < b || (a == b && h[i].idx < h[j].idx)
}
func (h segHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *segHeap) Push(x any)   { *h = append(*h, x.(*segReader)) }
func (h *segHeap) Pop() any {
	x := (*h)[len(*h)-1]
	*h = (*h)[:len(*h)-1]
	return x
}

// merge emits the points of segs (each sorted) in step order; equal steps
// keep segment order. buf is split between the segments' readers and the
// output batch.
func (s *metricSorter) merge(key string, segs []segment, buf []pt, emit func(string, []pt) error) error {
	out := buf[:0:emitBatch]
	rest := buf[emitBatch:]
	per := max(len(rest)/len(segs), 256)
	if per*len(segs) > len(rest) {
		rest = make([]pt, per*len(segs))
	}
	h := make(segHeap, 0, len(segs))
	for i, sg := range segs {
		r := &segReader{s: s, seg: sg, idx: i, buf: rest[i*per : (i+1)*per : (i+1)*per]}
		r.win = r.buf[:1] // a dummy head that advance consumes
		if ok, err := r.advance(); err != nil {
			return err
		} else if ok {
			h = append(h, r)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		top := h[0]
		out = append(out, top.head())
		if len(out) == cap(out) {
			if err := emit(key, out); err != nil {
				return err
			}
			out = out[:0]
		}
		ok, err := top.advance()
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	if len(out) > 0 {
		return emit(key, out)
	}
	return nil
}

// discard removes the spill file and drops the buffered points.
func (s *metricSorter) discard() {
	if s.spill != nil {
		s.spill.Close()
		os.Remove(s.spill.Name())
		s.spill = nil
	}
	s.arena.release()
	s.arena, s.per, s.tmp, s.segs = arena{}, nil, nil, nil
}
