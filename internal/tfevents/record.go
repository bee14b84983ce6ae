// Package tfevents reads TensorBoard event files (`events.out.tfevents.*`)
// with no TensorFlow: the TFRecord framing and the Event and Summary
// protobufs inside it, decoded by field number.
//
// A TFRecord file is a sequence of records, each
//
//	uint64 length (little endian)
//	uint32 masked CRC-32C of the 8 length bytes
//	length bytes of data (one serialized Event)
//	uint32 masked CRC-32C of the data
//
// The reader streams: memory stays bounded by the largest record (capped by
// MaxRecordSize), whatever the size of the file. A record whose data
// checksum is wrong is skipped and reported as [Damage], and reading goes
// on (its length was checked, so the next record's start is known). A
// wrong length checksum, an oversized length, or a file ending inside a
// record stops reading: everything before it has been yielded, and the
// Damage names the file and the offset of the record.
package tfevents

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// HeaderSize and FooterSize are the bytes around a record's data.
const (
	HeaderSize = 12
	FooterSize = 4
	// MaxRecordSize caps one record's data. A longer length, even with a
	// good checksum, is reported as Damage and stops the file.
	MaxRecordSize = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is the masked CRC-32C TFRecord stores: the checksum rotated
// right by 15 bits plus a constant, so that data holding CRCs checksums
// well.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// Damage is a part of a file that could not be read as a record.
type Damage struct {
	File   string // the name given to NewReader
	Offset int64  // file offset of the record's first byte
	Reason string
	// Truncated is true when the file ends inside a record: the usual
	// state of a file a live or killed writer left, not corruption.
	Truncated bool
}

// Error formats the damage as "FILE: offset N: REASON".
func (d Damage) Error() string {
	return fmt.Sprintf("%s: offset %d: %s", d.File, d.Offset, d.Reason)
}

// Reader reads the records of one file in order. It is not safe for
// concurrent use.
type Reader struct {
	name   string
	src    *bufio.Reader
	off    int64 // offset of the next record
	buf    []byte
	head   [HeaderSize]byte
	damage []Damage
	done   bool
}

// NewReader returns a Reader over r; name is used in Damage.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, src: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next good record's data and its file offset. The data is
// a view into the Reader's buffer, valid until the next call. At the end of
// the file, or at damage that stops it, it returns io.EOF; a read error of
// the underlying reader is returned as it is (wrapped with the file and
// offset) and also ends reading.
func (r *Reader) Next() (data []byte, offset int64, err error) {
	for !r.done {
		start := r.off
		n, err := io.ReadFull(r.src, r.head[:])
		if err != nil {
			r.done = true
			if err == io.EOF {
				return nil, 0, io.EOF
			}
			if err == io.ErrUnexpectedEOF {
				r.damage = append(r.damage, Damage{File: r.name, Offset: start, Truncated: true,
					Reason: fmt.Sprintf("truncated record header (%d of %d bytes)", n, HeaderSize)})
				return nil, 0, io.EOF
			}
			return nil, 0, fmt.Errorf("%s: offset %d: %w", r.name, start, err)
		}
		length := binary.LittleEndian.Uint64(r.head[:8])
		if MaskedCRC(r.head[:8]) != binary.LittleEndian.Uint32(r.head[8:]) {
			r.done = true
			r.damage = append(r.damage, Damage{File: r.name, Offset: start, Reason: "record length checksum mismatch"})
			return nil, 0, io.EOF
		}
		if length > MaxRecordSize {
			r.done = true
			r.damage = append(r.damage, Damage{File: r.name, Offset: start,
				Reason: fmt.Sprintf("record of %d bytes exceeds the %d byte limit", length, MaxRecordSize)})
			return nil, 0, io.EOF
		}
		total := int(length) + FooterSize
		if cap(r.buf) < total {
			r.buf = make([]byte, total, max(total, 2*cap(r.buf)))
		}
		r.buf = r.buf[:total]
		n, err = io.ReadFull(r.src, r.buf)
		if err != nil {
			r.done = true
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				r.damage = append(r.damage, Damage{File: r.name, Offset: start, Truncated: true,
					Reason: fmt.Sprintf("truncated record (%d of %d bytes)", HeaderSize+n, HeaderSize+total)})
				return nil, 0, io.EOF
			}
			return nil, 0, fmt.Errorf("%s: offset %d: %w", r.name, start, err)
		}
		r.off += int64(HeaderSize + total)
		data = r.buf[:length]
		if MaskedCRC(data) != binary.LittleEndian.Uint32(r.buf[length:]) {
			r.damage = append(r.damage, Damage{File: r.name, Offset: start, Reason: "record data checksum mismatch (record skipped)"})
			continue
		}
		return data, start, nil
	}
	return nil, 0, io.EOF
}

// Damage returns what was found damaged so far, in file order.
func (r *Reader) Damage() []Damage { return r.damage }

// Offset is the offset of the first byte not yet read as a record.
func (r *Reader) Offset() int64 { return r.off }

// AppendRecord appends data framed as one TFRecord to dst (for tests and
// fixtures).
func AppendRecord(dst, data []byte) []byte {
	var h [HeaderSize]byte
	binary.LittleEndian.PutUint64(h[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(h[8:], MaskedCRC(h[:8]))
	dst = append(dst, h[:]...)
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, MaskedCRC(data))
}
