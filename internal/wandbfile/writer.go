package wandbfile

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Writer writes records to a `.wandb` file in the framing the Reader reads:
// the 7-byte file header, then records split into checksummed chunks (FULL,
// or FIRST, MIDDLE..., LAST) that never cross a 32 KiB block boundary; a
// block tail too short for a chunk header is padded with zeros. It writes no
// trailer: like W&B's writers, it leaves the last block short.
//
// Writer exists for fixtures, tests and benchmarks: runferry itself never
// writes `.wandb` files. Output is buffered one block at a time; call Flush
// when done. Errors are sticky: after a write error every method returns it.
// A Writer is not safe for concurrent use.
type Writer struct {
	dst   io.Writer
	grid  int64  // offset of the block grid: 0, or legacyGridOffset
	buf   []byte // bytes not yet passed to dst; never crosses a block end
	off   int64  // file offset of the end of buf
	err   error
	chunk [ChunkHeaderSize]byte
}

// NewWriter returns a Writer that writes the file header to w at once
// (buffered) and then the records given to WriteRecord, in the standard
// block layout (blocks at multiples of BlockSize, the header inside block 0)
// that W&B has written since SDK 0.17.6.
func NewWriter(w io.Writer) *Writer {
	return newWriter(w, 0)
}

// NewLegacyCoreWriter is NewWriter for the block layout written by
// wandb-core before SDK 0.17.6, where the block grid starts after the file
// header. Readers detect either layout.
func NewLegacyCoreWriter(w io.Writer) *Writer {
	return newWriter(w, legacyGridOffset)
}

func newWriter(w io.Writer, grid int64) *Writer {
	wr := &Writer{dst: w, grid: grid, buf: make([]byte, 0, BlockSize)}
	wr.buf = append(wr.buf, fileIdent...)
	wr.buf = binary.LittleEndian.AppendUint16(wr.buf, fileMagic)
	wr.buf = append(wr.buf, fileVersion)
	wr.off = FileHeaderSize
	return wr
}

// Offset returns the file offset the next chunk would start at if no padding
// were needed: the number of bytes written so far, buffered or not.
func (w *Writer) Offset() int64 { return w.off }

// blockLeft is the space left in the current block.
func (w *Writer) blockLeft() int {
	return BlockSize - int((w.off-w.grid)%BlockSize)
}

// WriteRecord appends one record (a serialized W&B Record message, such as
// AppendRecord builds) and returns the file offset of its first chunk, the
// offset Reader.Next reports for it. A record larger than MaxRecordSize is
// refused, since readers would skip it.
func (w *Writer) WriteRecord(payload []byte) (offset int64, err error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(payload) > MaxRecordSize {
		return 0, fmt.Errorf("wandbfile: record of %d bytes exceeds MaxRecordSize (%d)", len(payload), MaxRecordSize)
	}
	offset = -1
	first := true
	for {
		if left := w.blockLeft(); left < ChunkHeaderSize {
			w.pad(left)
		}
		n := min(len(payload), w.blockLeft()-ChunkHeaderSize)
		last := n == len(payload)
		var typ byte
		switch {
		case first && last:
			typ = chunkFull
		case first:
			typ = chunkFirst
		case last:
			typ = chunkLast
		default:
			typ = chunkMiddle
		}
		if first {
			offset = w.off
		}
		w.writeChunk(typ, payload[:n])
		payload = payload[n:]
		first = false
		if w.err != nil {
			return 0, w.err
		}
		if last {
			return offset, nil
		}
	}
}

// writeChunk appends one chunk with its header; the caller made sure it fits
// in the current block.
func (w *Writer) writeChunk(typ byte, data []byte) {
	binary.LittleEndian.PutUint32(w.chunk[0:4], chunkChecksum(typ, data))
	binary.LittleEndian.PutUint16(w.chunk[4:6], uint16(len(data)))
	w.chunk[6] = typ
	w.buf = append(w.buf, w.chunk[:]...)
	w.buf = append(w.buf, data...)
	w.off += int64(ChunkHeaderSize + len(data))
	w.flushBlockEnd()
}

// pad fills the rest of the current block with n zero bytes.
func (w *Writer) pad(n int) {
	w.buf = append(w.buf, make([]byte, n)...)
	w.off += int64(n)
	w.flushBlockEnd()
}

// flushBlockEnd passes the buffer on when it reaches a block boundary, so
// the buffer never holds more than one block.
func (w *Writer) flushBlockEnd() {
	if (w.off-w.grid)%BlockSize == 0 {
		w.flushBuf()
	}
}

// flushBuf passes buffered bytes to the destination.
func (w *Writer) flushBuf() {
	if w.err != nil || len(w.buf) == 0 {
		return
	}
	n, err := w.dst.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("wandbfile: writing at offset %d: %w", w.off-int64(len(w.buf))+int64(n), err)
		return
	}
	w.buf = w.buf[:0]
}

// Flush writes any buffered bytes to the underlying writer. It does not pad
// the last block.
func (w *Writer) Flush() error {
	w.flushBuf()
	return w.err
}
