package wandbfile

import (
	"bytes"
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// testWriter builds `.wandb` files in memory the way W&B's writers do, for
// tests only. With legacy set it uses the pre-0.17.6 wandb-core layout
// (blocks start after the file header).
type testWriter struct {
	buf     bytes.Buffer
	grid    int64
	written []writtenRecord
}

// writtenRecord remembers where a record went.
type writtenRecord struct {
	payload []byte
	offset  int64   // first chunk header
	end     int64   // end of the last chunk
	chunks  []int64 // offsets of every chunk header
}

// newTestWriter starts a file with the standard header.
func newTestWriter(legacy bool) *testWriter {
	w := &testWriter{}
	if legacy {
		w.grid = legacyGridOffset
	}
	w.buf.WriteString(fileIdent)
	w.buf.Write([]byte{0xE1, 0xBE, fileVersion})
	return w
}

// blockLeft is the space left in the current block.
func (w *testWriter) blockLeft() int {
	return BlockSize - int((int64(w.buf.Len())-w.grid)%BlockSize)
}

// write appends one record, split into chunks at block boundaries, padding
// a block tail shorter than a chunk header with zeros.
func (w *testWriter) write(payload []byte) writtenRecord {
	rec := writtenRecord{payload: append([]byte(nil), payload...), offset: -1}
	first := true
	for {
		if left := w.blockLeft(); left < ChunkHeaderSize {
			w.buf.Write(make([]byte, left))
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
		off := int64(w.buf.Len())
		if first {
			rec.offset = off
		}
		rec.chunks = append(rec.chunks, off)
		w.writeChunk(typ, payload[:n])
		payload = payload[n:]
		first = false
		if last {
			break
		}
	}
	rec.end = int64(w.buf.Len())
	w.written = append(w.written, rec)
	return rec
}

// writeChunk appends one chunk with a correct checksum.
func (w *testWriter) writeChunk(typ byte, data []byte) {
	var hdr [ChunkHeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[0:4], chunkChecksum(typ, data))
	binary.LittleEndian.PutUint16(hdr[4:6], uint16(len(data)))
	hdr[6] = typ
	w.buf.Write(hdr[:])
	w.buf.Write(data)
}

// bytes returns the file written so far.
func (w *testWriter) bytes() []byte { return w.buf.Bytes() }

// The helpers below build protobuf messages by field number.

func pbString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func pbBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func pbVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func pbDouble(b []byte, num protowire.Number, v float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func pbTimestamp(b []byte, num protowire.Number, seconds int64, nanos int32) []byte {
	ts := pbVarint(nil, 1, uint64(seconds))
	ts = pbVarint(ts, 2, uint64(nanos))
	return pbBytes(b, num, ts)
}

// pbItem builds a HistoryItem/SummaryItem/ConfigItem with either a key or a
// nested key (path longer than one segment, or nested set).
func pbItem(path []string, nested bool, valueJSON string) []byte {
	var it []byte
	if nested || len(path) > 1 {
		for _, p := range path {
			it = pbString(it, itemFieldNestedKey, p)
		}
	} else {
		it = pbString(it, itemFieldKey, path[0])
	}
	return pbString(it, itemFieldValueJSON, valueJSON)
}

// historyPayload builds a Record with a history row holding _step, a
// timestamp and the given metrics, as wandb-core writes it (nested keys).
func historyPayload(num, step int64, metrics map[string]string) []byte {
	items := []Item{HistoryItem(itoa(step), "_step"), HistoryItem("1717000000.25", "_timestamp")}
	for k, v := range metrics {
		items = append(items, HistoryItem(v, k))
	}
	rec := Record{Num: num, Kind: KindHistory, History: &History{Items: items, Step: &step}}
	payload, err := AppendRecord(nil, &rec)
	if err != nil {
		panic(err) // a history record always encodes
	}
	return payload
}
