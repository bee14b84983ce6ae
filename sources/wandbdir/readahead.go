package wandbdir

import (
	"io"

	"github.com/runferry/runferry/internal/wandbfile"
)

// recordBatch holds consecutive record payloads of a `.wandb` file, copied
// out of the reader so that framing (block reads, CRC checks, reassembly)
// and decoding run on different cores.
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

const (
	batchBytes   = 1 << 20 // payload bytes per batch, about
	batchRecords = 4096
	batchesAhead = 2
)

// readAhead reads rd in its own goroutine, up to batchesAhead batches ahead
// of the consumer. The channel closes when the file ends, after a batch
// carrying a read error, or after stop; only once it is closed is
// rd.Damage() final. stop must be called (it waits for the goroutine).
func readAhead(rd *wandbfile.Reader) (<-chan *recordBatch, func()) {
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
				b = &recordBatch{buf: make([]byte, 0, batchBytes+64<<10), free: free}
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
