package wandbfile

import (
	"io"
)

// Scanner reads the record payloads of a `.wandb` file as Reader does,
// but ahead of its consumer, in its own goroutine: framing (block reads,
// CRC checks, reassembly of chunks) and what the consumer does with each
// record run on different cores. It yields exactly the payloads, offsets,
// damage and error the Reader yields, in the same order.
//
// A Scanner is used by one goroutine. Close must be called (it stops and
// waits for the read-ahead goroutine); the Reader must not be used
// directly while the Scanner runs.
type Scanner struct {
	rd      *Reader
	batches <-chan *recordBatch
	stop    func()
	cur     *recordBatch
	i       int   // next payload of cur
	start   int   // its start in cur.buf
	err     error // io.EOF or the read error, once returned
}

// recordBatch holds consecutive record payloads of a file, copied out of
// the reader.
type recordBatch struct {
	buf  []byte  // payloads back to back
	ends []int   // end of each payload in buf
	offs []int64 // file offset of each record
	err  error   // a read error that ended the file, after the payloads
	free chan *recordBatch
}

// release hands the batch back for reuse; its payloads must not be used
// afterwards.
func (b *recordBatch) release() {
	select {
	case b.free <- b:
	default:
	}
}

// Read-ahead sizes: a batch holds about batchBytes of payloads or
// batchRecords records, and the reading goroutine runs at most
// batchesAhead batches ahead. A new batch's buffer starts at
// batchStartBytes and grows as payloads arrive (batches are reused within
// a file), so a small file costs a small buffer: most logs of a large
// collection are far smaller than batchBytes, and clearing a fresh 1 MiB
// buffer for each of them dominated listing and planning.
const (
	batchBytes      = 1 << 20
	batchStartBytes = 32 << 10
	batchRecords    = 4096
	batchesAhead    = 2
)

// NewScanner starts reading rd ahead. Memory stays bounded by the
// read-ahead (a few MiB, plus records up to MaxRecordSize).
func NewScanner(rd *Reader) *Scanner {
	s := &Scanner{rd: rd}
	s.batches, s.stop = readAhead(rd)
	return s
}

// Next returns the next record's payload and the file offset of its first
// chunk, as Reader.Next does. At the end of the file it returns io.EOF;
// an I/O error of the underlying reader (as Reader.Next returns it, naming
// the file and the offset) is returned after the payloads read before it.
// After either, Next keeps returning the same error. Damage is not an
// error: it is skipped and listed (see Damage).
//
// The payload is a view of the Scanner's buffers, not a copy: it is valid
// only until the next call to Next or Close. Callers that keep any of it
// (including subslices) must copy it.
func (s *Scanner) Next() (payload []byte, offset int64, err error) {
	for {
		if b := s.cur; b != nil {
			if s.i < len(b.ends) {
				end := b.ends[s.i]
				payload, offset = b.buf[s.start:end], b.offs[s.i]
				s.start = end
				s.i++
				return payload, offset, nil
			}
			if b.err != nil {
				s.err = b.err
				s.cur = nil
				s.stop() // the reader is done: Damage is final
				return nil, 0, s.err
			}
			b.release()
			s.cur = nil
		}
		if s.err != nil {
			return nil, 0, s.err
		}
		b, ok := <-s.batches
		if !ok {
			s.err = io.EOF
			return nil, 0, s.err
		}
		s.cur, s.i, s.start = b, 0, 0
	}
}

// Damage returns the damage the Reader found (see Reader.Damage). The list
// is final once Next has returned an error (io.EOF included); before that
// it must not be called.
func (s *Scanner) Damage() []Damage { return s.rd.Damage() }

// Close stops the read-ahead and waits for it. The payloads returned by
// Next are invalid afterwards. Close may be called more than once.
func (s *Scanner) Close() { s.stop() }

// readAhead reads rd in its own goroutine, up to batchesAhead batches ahead
// of the consumer. The channel closes when the file ends, after a batch
// carrying a read error, or after stop; only once it is closed is
// rd.Damage() final. stop must be called (it waits for the goroutine).
func readAhead(rd *Reader) (<-chan *recordBatch, func()) {
	out := make(chan *recordBatch, batchesAhead)
	free := make(chan *recordBatch, batchesAhead+2)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for {
			var b *recordBatch
			select {
			case b = <-free:
				b.buf, b.ends, b.offs = b.buf[:0], b.ends[:0], b.offs[:0]
			default:
				b = &recordBatch{buf: make([]byte, 0, batchStartBytes), free: free}
			}
			last := false
			for len(b.buf) < batchBytes && len(b.ends) < batchRecords {
				payload, off, err := rd.Next()
				if err == io.EOF {
					last = true
					break
				}
				if err != nil {
					b.err, last = err, true
					break
				}
				b.buf = append(b.buf, payload...)
				b.ends = append(b.ends, len(b.buf))
				b.offs = append(b.offs, off)
			}
			if len(b.ends) > 0 || b.err != nil {
				select {
				case out <- b:
				case <-done:
					return
				}
			}
			if last {
				return
			}
		}
	}()
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		close(done)
		for range out { // wait for the reader to finish
		}
	}
	return out, stop
}
