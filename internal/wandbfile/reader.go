// Package wandbfile reads W&B's `.wandb` transaction log: the LevelDB-style
// framing (header, 32 KiB blocks, checksummed chunks) and the protobuf
// Record messages inside it, decoded by field number.
//
// The reader streams: memory use is bounded by a few blocks plus the largest
// record (capped by MaxRecordSize), whatever the size of the file. Damage
// (checksum errors, malformed chunks, a truncated tail) never stops reading;
// it is collected as [Damage] values and reading resumes at the next block,
// the way LevelDB recovers.
//
// Two ways read the records. [Decode] turns a payload into a [Record],
// every field copied out. The zero-copy scanner is the fast path for
// large logs: [Scanner] reads payloads ahead on another goroutine,
// [PeekRecord] finds a record's type without decoding it, [Row] views a
// history record in place and [RowConverter] turns rows of numbers into
// metric points without allocating per point. What the scanner does not
// fully understand it leaves to Decode and [ConvertValues], and where it
// accepts its input it gives what they give (tests and fuzzers compare
// them). Its results are views of the file's bytes, valid until the next
// record; each function says what it keeps.
package wandbfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
)

// Framing constants of the `.wandb` format.
const (
	// BlockSize is the size of the blocks that chunks never cross.
	BlockSize = 32768
	// FileHeaderSize is the size of the file header (ident, magic, version).
	FileHeaderSize = 7
	// ChunkHeaderSize is the size of a chunk header (CRC, length, type).
	ChunkHeaderSize = 7
	// MaxRecordSize caps the size of one reassembled record. A record that
	// grows beyond it is skipped and reported as Damage.
	MaxRecordSize = 64 << 20
)

// fileIdent, fileMagic and fileVersion make up the 7-byte file header.
const (
	fileIdent   = ":W&B"
	fileMagic   = 0xBEE1
	fileVersion = 0
)

// Chunk types. A record is one full chunk, or a first chunk, any number of
// middle chunks and a last chunk.
const (
	chunkZero   = 0 // only in zeroed (preallocated) regions
	chunkFull   = 1
	chunkFirst  = 2
	chunkMiddle = 3
	chunkLast   = 4
)

// Damage describes a part of a file that could not be read as records. The
// reader skips it and carries on.
type Damage struct {
	// File is the name given to NewReader.
	File string
	// Offset is the file offset of the chunk (or the record start) where the
	// damage was found.
	Offset int64
	// Reason says what was wrong, in a few words.
	Reason string
	// Truncated is true when the file ends in the middle of a chunk or record:
	// the usual state of a live or crashed run, not a sign of corruption.
	Truncated bool
}

// Error formats the damage as "FILE: offset N: REASON", so a Damage can be
// used where an error is expected.
func (d Damage) Error() string {
	return fmt.Sprintf("%s: offset %d: %s", d.File, d.Offset, d.Reason)
}

// Reader reads the records of one `.wandb` file in order. It is not safe for
// concurrent use.
type Reader struct {
	name string
	src  *bufio.Reader

	// gridOffset is 0 for the standard layout (blocks at k*BlockSize, the
	// file header inside block 0) and FileHeaderSize for the layout written
	// by wandb-core before 0.17.6 (blocks at 7+k*BlockSize).
	gridOffset int64

	block      []byte // the current block's bytes (possibly short at EOF)
	blockStart int64  // file offset of block[0]
	blockPos   int    // next unread byte in block
	lastBlock  bool   // block is the final, short block of the file
	done       bool   // no more blocks

	record      []byte // reassembly buffer for FIRST..LAST
	recordStart int64
	inRecord    bool
	// discarding is set while skipping the remaining chunks of a record that
	// was already reported as damage (too large).
	discarding bool

	damage []Damage

	// maxRecordSize is MaxRecordSize; tests lower it.
	maxRecordSize int
}

// NewReader checks the file header of r and returns a Reader positioned at
// the first record. name is used in error and Damage messages. The error for
// a short or wrong header names the file and the offset of the bad byte. The
// block layout (standard, or the pre-0.17.6 wandb-core one) is detected by
// looking ahead at most a few blocks.
func NewReader(r io.Reader, name string) (*Reader, error) {
	src := bufio.NewReaderSize(r, readBufferSize(r))
	var header [FileHeaderSize]byte
	n, err := io.ReadFull(src, header[:])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s: offset %d: not a .wandb file: header is %d bytes, want %d", name, n, n, FileHeaderSize)
		}
		return nil, fmt.Errorf("%s: offset %d: reading header: %w", name, n, err)
	}
	if err := checkFileHeader(header[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rd := &Reader{name: name, src: src, maxRecordSize: MaxRecordSize}
	grid, err := detectGrid(src)
	if err != nil {
		return nil, fmt.Errorf("%s: offset %d: %w", name, FileHeaderSize, err)
	}
	rd.gridOffset = grid
	rd.block = make([]byte, 0, BlockSize)
	rd.blockStart = FileHeaderSize
	rd.blockPos = 0
	return rd, nil
}

// readBufferSize is the size of a Reader's read buffer: room for the
// layout probe and a block, or, when r is a file (it has a Stat method)
// smaller than that, the file's size rounded up to 4 KiB, so that opening
// each of many small logs does not allocate and clear buffers many times
// their size. A file that grows after the Stat is still read in full
// (the buffer only limits how far the layout probe looks ahead, and a file
// shorter than a block reads the same under either layout).
func readBufferSize(r io.Reader) int {
	const full = layoutProbeSize + BlockSize
	st, ok := r.(interface{ Stat() (fs.FileInfo, error) })
	if !ok {
		return full
	}
	fi, err := st.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() >= full {
		return full
	}
	const page = 4 << 10
	return int(fi.Size()/page+1) * page
}

// checkFileHeader validates the 7-byte file header and reports the offset of
// the first wrong field.
func checkFileHeader(h []byte) error {
	if string(h[0:4]) != fileIdent {
		return fmt.Errorf("offset 0: not a .wandb file: ident %q, want %q", h[0:4], fileIdent)
	}
	if magic := binary.LittleEndian.Uint16(h[4:6]); magic != fileMagic {
		return fmt.Errorf("offset 4: not a .wandb file: magic %#04x, want %#04x", magic, fileMagic)
	}
	if h[6] != fileVersion {
		return fmt.Errorf("offset 6: unsupported .wandb version %d, want %d", h[6], fileVersion)
	}
	return nil
}

// Name returns the file name given to NewReader.
func (r *Reader) Name() string { return r.name }

// Damage returns the damage found so far, in file order. The slice is owned
// by the Reader; it only grows.
func (r *Reader) Damage() []Damage { return r.damage }

// LegacyCoreLayout reports whether the file uses the block layout written by
// wandb-core before 0.17.6, where the blocks start after the file header.
func (r *Reader) LegacyCoreLayout() bool { return r.gridOffset != 0 }

// Next returns the payload of the next record (a serialized W&B Record
// message) and the file offset of its first chunk. At the end of the data it
// returns io.EOF. Damage is skipped and recorded (see Damage); only a read
// error of the underlying reader is returned as an error, after which the
// Reader should not be used.
//
// The payload is valid only until the next call to Next: copy it to keep it.
func (r *Reader) Next() ([]byte, int64, error) {
	for {
		if r.blockPos >= len(r.block) || r.remainingInBlock() < ChunkHeaderSize {
			if err := r.finishBlock(); err != nil {
				return nil, 0, err
			}
			if r.done {
				r.endOfData()
				return nil, 0, io.EOF
			}
			continue
		}
		payload, offset, ok := r.nextChunk()
		if ok {
			return payload, offset, nil
		}
	}
}

// remainingInBlock is the number of unread bytes in the current block.
func (r *Reader) remainingInBlock() int { return len(r.block) - r.blockPos }

// offsetOf converts a position in the current block to a file offset.
func (r *Reader) offsetOf(pos int) int64 { return r.blockStart + int64(pos) }

// nextChunk reads one chunk at the current position. It returns a complete
// record when that chunk ends one.
func (r *Reader) nextChunk() (payload []byte, offset int64, ok bool) {
	pos := r.blockPos
	hdr := r.block[pos : pos+ChunkHeaderSize]
	sum := binary.LittleEndian.Uint32(hdr[0:4])
	length := int(binary.LittleEndian.Uint16(hdr[4:6]))
	typ := hdr[6]
	chunkOffset := r.offsetOf(pos)

	if sum == 0 && length == 0 && typ == chunkZero {
		// A zeroed region (preallocated or mmap-written): skip the block.
		r.skipBlock()
		if !allZero(r.block[pos:]) {
			r.report(chunkOffset, "zeroed chunk header followed by non-zero bytes; skipped rest of block", false)
		}
		return nil, 0, false
	}
	end := pos + ChunkHeaderSize + length
	if end > len(r.block) {
		r.skipBlock()
		if r.lastBlock {
			r.truncated(chunkOffset, fmt.Sprintf("chunk of %d bytes extends past end of file", length))
			return nil, 0, false
		}
		r.dropRecord("record interrupted by damage", false)
		r.report(chunkOffset, fmt.Sprintf("chunk length %d exceeds the %d bytes left in block", length, len(r.block)-pos-ChunkHeaderSize), false)
		return nil, 0, false
	}
	data := r.block[pos+ChunkHeaderSize : end]
	if want := chunkChecksum(typ, data); want != sum {
		r.skipBlock()
		r.dropRecord("record interrupted by damage", false)
		r.report(chunkOffset, fmt.Sprintf("chunk checksum %#08x, computed %#08x", sum, want), false)
		return nil, 0, false
	}
	r.blockPos = end
	return r.assemble(typ, data, chunkOffset)
}

// assemble adds a valid chunk to the record being built and returns the
// record when it is complete.
func (r *Reader) assemble(typ byte, data []byte, chunkOffset int64) ([]byte, int64, bool) {
	switch typ {
	case chunkFull:
		r.dropRecord("record without a last chunk", false)
		r.discarding = false
		return data, chunkOffset, true
	case chunkFirst:
		r.dropRecord("record without a last chunk", false)
		r.discarding = false
		r.inRecord = true
		r.recordStart = chunkOffset
		r.record = append(r.record[:0], data...)
		return nil, 0, false
	case chunkMiddle, chunkLast:
		if r.discarding {
			if typ == chunkLast {
				r.discarding = false
			}
			return nil, 0, false
		}
		if !r.inRecord {
			r.report(chunkOffset, fmt.Sprintf("%s chunk without a first chunk", chunkTypeName(typ)), false)
			return nil, 0, false
		}
		if len(r.record)+len(data) > r.maxRecordSize {
			r.report(r.recordStart, fmt.Sprintf("record larger than %d bytes; skipped", r.maxRecordSize), false)
			r.inRecord = false
			r.discarding = typ != chunkLast
			r.record = r.record[:0]
			return nil, 0, false
		}
		r.record = append(r.record, data...)
		if typ == chunkMiddle {
			return nil, 0, false
		}
		r.inRecord = false
		return r.record, r.recordStart, true
	default:
		r.skipBlock()
		r.dropRecord("record interrupted by damage", false)
		r.report(chunkOffset, fmt.Sprintf("unknown chunk type %d", typ), false)
		return nil, 0, false
	}
}

// chunkTypeName names a chunk type for messages.
func chunkTypeName(typ byte) string {
	switch typ {
	case chunkFull:
		return "full"
	case chunkFirst:
		return "first"
	case chunkMiddle:
		return "middle"
	case chunkLast:
		return "last"
	}
	return fmt.Sprintf("type-%d", typ)
}

// chunkChecksum is CRC-32/IEEE over the type byte followed by the payload,
// unmasked, as both W&B writers compute it.
func chunkChecksum(typ byte, data []byte) uint32 {
	sum := crc32.Update(0, crc32.IEEETable, []byte{typ})
	return crc32.Update(sum, crc32.IEEETable, data)
}

// dropRecord abandons a partly assembled record, reporting it.
func (r *Reader) dropRecord(reason string, truncated bool) {
	if r.inRecord {
		r.report(r.recordStart, reason, truncated)
		r.inRecord = false
		r.record = r.record[:0]
	}
}

// truncated reports the end of the file cutting a chunk short. When a record
// was being assembled, the damage is reported once, at the record's start.
func (r *Reader) truncated(chunkOffset int64, detail string) {
	if r.inRecord {
		r.dropRecord(fmt.Sprintf("record cut short by end of file (truncated): %s at offset %d", detail, chunkOffset), true)
		return
	}
	r.report(chunkOffset, detail+" (truncated)", true)
}

// report records one Damage.
func (r *Reader) report(offset int64, reason string, truncated bool) {
	r.damage = append(r.damage, Damage{File: r.name, Offset: offset, Reason: reason, Truncated: truncated})
}

// skipBlock moves to the end of the current block.
func (r *Reader) skipBlock() { r.blockPos = len(r.block) }

// finishBlock checks the padding left at the end of the current block and
// loads the next one.
func (r *Reader) finishBlock() error {
	if rest := r.block[r.blockPos:]; len(rest) > 0 {
		switch {
		case r.lastBlock && !allZero(rest):
			r.truncated(r.offsetOf(r.blockPos), fmt.Sprintf("chunk header cut short by end of file after %d bytes", len(rest)))
		case !r.lastBlock && !allZero(rest):
			r.report(r.offsetOf(r.blockPos), fmt.Sprintf("non-zero padding (%d bytes) at block end", len(rest)), false)
		}
		r.blockPos = len(r.block)
	}
	return r.loadBlock()
}

// loadBlock reads the next block from the source. The first block starts
// right after the file header and ends at the first grid boundary.
func (r *Reader) loadBlock() error {
	if r.lastBlock || r.done {
		r.done = true
		return nil
	}
	start := r.blockStart + int64(len(r.block))
	size := BlockSize - int((start-r.gridOffset)%BlockSize)
	buf := r.block[:size]
	n, err := io.ReadFull(r.src, buf)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		r.lastBlock = true
	default:
		return fmt.Errorf("%s: offset %d: %w", r.name, start+int64(n), err)
	}
	r.block = buf[:n]
	r.blockStart = start
	r.blockPos = 0
	if n == 0 {
		r.done = true
	}
	return nil
}

// endOfData reports a record left incomplete when the file ends.
func (r *Reader) endOfData() {
	r.dropRecord("record cut short by end of file (truncated)", true)
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}

// NewTailReader returns a Reader over the records that start in about the
// last tail bytes of the file f of the given size: it checks the file
// header (and detects the block layout) as NewReader does, then moves to
// the first block boundary at or after size-tail and reads on from there,
// skipping the chunks that end a record begun before it. A file no longer
// than tail plus one block is read whole. It reads at most the header
// probe and the tail, whatever the size of the file; what it finds
// damaged in the tail is in Damage as usual.
//
// It serves cheap looks at a log's end (has the run an exit record, when
// did it last write) without decoding the history before it.
func NewTailReader(f io.ReadSeeker, size int64, name string, tail int64) (*Reader, error) {
	rd, err := NewReader(f, name)
	if err != nil {
		return nil, err
	}
	from := size - tail
	k := (from - rd.gridOffset + BlockSize - 1) / BlockSize
	start := rd.gridOffset + k*BlockSize
	if from <= BlockSize || start >= size {
		return rd, nil
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: offset %d: %w", name, start, err)
	}
	rd.src.Reset(f)
	rd.block = rd.block[:0]
	rd.blockStart = start
	rd.blockPos = 0
	// The first chunks may end a record that began before start.
	rd.discarding = true
	return rd, nil
}
