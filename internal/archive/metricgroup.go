package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/bytestreamsplit"
	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// groupEncoder writes one row group of a run's metrics file as a whole
// Parquet file in memory, column by column, without parquet-go's row path:
// the run column is one value (a dictionary of one entry, each page one RLE
// run of index 0), the key column a dictionary of the group's keys with one
// RLE run per stretch of a key, step and time DELTA_BINARY_PACKED, value
// BYTE_STREAM_SPLIT, every data page a version 2 page compressed with
// zstdCodec, with page statistics for step, time and value, row-group
// statistics and a column and offset index for every column: the encodings,
// page version, codec and schema of the files NewMetricsTableWriter writes,
// so the row group is copied verbatim into the metrics file (copyRowGroup)
// and holds the same rows. It costs a few operations per stretch of a key
// where parquet-go's writer looked up both strings in a dictionary and
// compared them for the page bounds on every row (docs/BENCHMARKS.md,
// "Parquet archive in S3").
//
// Rows must be added in archive order (sorted by key), all of one run.
type groupEncoder struct {
	run    string
	keys   []string // the key column's dictionary, in order of appearance
	keyIdx map[string]int32
	rows   int64

	// The page being filled (every column's pages hold the same rows).
	runs   []keyRun // stretches of one key index
	steps  []int64
	times  []int64  // the non-null ones
	defs   []keyRun // definition levels of time: stretches of 0 (null) or 1
	values []float64

	cols    [metricColumns]groupColumn
	scratch []byte
	levels  []byte
	zbuf    []byte
}

// metricColumns is the number of columns of MetricRow.
const metricColumns = 5

// groupPageRows is the number of rows of each data page (the last of a row
// group may hold fewer): 256 KiB of one int64 column, about what
// parquet-go's 256 KiB page buffers hold.
const groupPageRows = 1 << 15

type keyRun struct {
	v int32
	n int32
}

// groupColumn is a column chunk being written: its pages, encoded and
// compressed, and what its metadata and indexes need.
type groupColumn struct {
	data      bytes.Buffer // data pages, headers included
	uncompr   int64        // their uncompressed size, headers included
	pages     int32
	locations []format.PageLocation
	index     format.ColumnIndex
	stats     format.Statistics
	nulls     int64
	hasBounds bool
	min, max  []byte
}

var groupEncoders = sync.Pool{New: func() any {
	return &groupEncoder{keyIdx: map[string]int32{}}
}}

// reset makes e ready for a row group of run.
func (e *groupEncoder) reset(run string) {
	e.run = run
	e.keys = e.keys[:0]
	clear(e.keyIdx)
	e.rows = 0
	e.resetPage()
	for i := range e.cols {
		c := &e.cols[i]
		c.data.Reset()
		c.uncompr, c.pages, c.nulls, c.hasBounds = 0, 0, 0, false
		c.locations = c.locations[:0]
		c.index = format.ColumnIndex{}
		c.stats = format.Statistics{}
		c.min, c.max = c.min[:0], c.max[:0]
	}
}

func (e *groupEncoder) resetPage() {
	e.runs, e.defs = e.runs[:0], e.defs[:0]
	e.steps, e.times, e.values = e.steps[:0], e.times[:0], e.values[:0]
}

// count is the number of rows added since reset.
func (e *groupEncoder) count() int64 { return e.rows + int64(len(e.steps)) }

// add appends pts, points of key, as rows.
func (e *groupEncoder) add(key string, pts []pt) error {
	idx, ok := int32(len(e.keys)-1), len(e.keys) > 0 && e.keys[len(e.keys)-1] == key
	if !ok {
		if idx, ok = e.keyIdx[key]; !ok {
			idx = int32(len(e.keys))
			e.keys = append(e.keys, key)
			e.keyIdx[key] = idx
		}
	}
	for len(pts) > 0 {
		n := min(len(pts), groupPageRows-len(e.steps))
		e.addPage(idx, pts[:n])
		pts = pts[n:]
		if len(e.steps) == groupPageRows {
			if err := e.flushPage(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *groupEncoder) addPage(idx int32, pts []pt) {
	e.runs = appendRun(e.runs, idx, int32(len(pts)))
	for _, p := range pts {
		e.steps = append(e.steps, p.step)
		e.values = append(e.values, p.val)
		if p.time != 0 {
			e.times = append(e.times, p.time)
			e.defs = appendRun(e.defs, 1, 1)
		} else {
			e.defs = appendRun(e.defs, 0, 1)
		}
	}
}

func appendRun(runs []keyRun, v, n int32) []keyRun {
	if k := len(runs) - 1; k >= 0 && runs[k].v == v {
		runs[k].n += n
		return runs
	}
	return append(runs, keyRun{v, n})
}

// flushPage encodes the page held as one data page of each column.
func (e *groupEncoder) flushPage() error {
	rows := int32(len(e.steps))
	if rows == 0 {
		return nil
	}
	first := e.rows
	e.rows += int64(rows)
	// run: index 0 on every row (bit width 0, one run).
	body := appendRLE(append(e.scratch[:0], 0), []keyRun{{0, rows}}, 0)
	if err := e.writePage(0, first, rows, 0, nil, body, nil); err != nil {
		return err
	}
	// key: one RLE run per stretch.
	maxIdx := int32(0)
	for _, r := range e.runs {
		maxIdx = max(maxIdx, r.v)
	}
	bw := bits.Len32(uint32(maxIdx))
	body = appendRLE(append(body[:0], byte(bw)), e.runs, bw)
	if err := e.writePage(1, first, rows, 0, nil, body, nil); err != nil {
		return err
	}
	// step
	var enc delta.BinaryPackedEncoding
	body, err := enc.EncodeInt64(body[:0], e.steps)
	if err != nil {
		return err
	}
	if err := e.writePage(2, first, rows, 0, nil, body, int64Bounds(e.steps)); err != nil {
		return err
	}
	// time: null where 0.
	e.levels = appendRLE(e.levels[:0], e.defs, 1)
	levels := e.levels
	body, err = enc.EncodeInt64(body[:0], e.times)
	if err != nil {
		return err
	}
	if err := e.writePage(3, first, rows, int32(int(rows)-len(e.times)), levels, body, int64Bounds(e.times)); err != nil {
		return err
	}
	// value
	var split bytestreamsplit.Encoding
	body, err = split.EncodeDouble(body[:0], e.values)
	if err != nil {
		return err
	}
	e.scratch = body[:0]
	if err := e.writePage(4, first, rows, 0, nil, body, doubleBounds(e.values)); err != nil {
		return err
	}
	e.resetPage()
	return nil
}

// bounds is a page's min and max, plain-encoded; nil when the page has no
// non-null value.
type bounds struct{ min, max []byte }

func int64Bounds(v []int64) *bounds {
	if len(v) == 0 {
		return nil
	}
	lo, hi := v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return &bounds{binary.LittleEndian.AppendUint64(nil, uint64(lo)), binary.LittleEndian.AppendUint64(nil, uint64(hi))}
}

// doubleBounds leaves NaN out unless every value is NaN, as parquet-go
// does.
func doubleBounds(v []float64) *bounds {
	i := 0
	for i < len(v) && math.IsNaN(v[i]) {
		i++
	}
	if i == len(v) {
		if len(v) == 0 {
			return nil
		}
		i = 0
	}
	lo, hi := v[i], v[i]
	for _, x := range v[i+1:] {
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
	}
	return &bounds{binary.LittleEndian.AppendUint64(nil, math.Float64bits(lo)), binary.LittleEndian.AppendUint64(nil, math.Float64bits(hi))}
}

// appendRLE appends runs as RLE runs of Parquet's RLE/bit-packing hybrid
// encoding of bit width bw (no length prefix, no bit width byte).
func appendRLE(dst []byte, runs []keyRun, bw int) []byte {
	w := (bw + 7) / 8
	for _, r := range runs {
		dst = binary.AppendUvarint(dst, uint64(r.n)<<1)
		for b := range w {
			dst = append(dst, byte(uint32(r.v)>>(8*b)))
		}
	}
	return dst
}

// writePage compresses and appends one version 2 data page of column col
// (rows from row first), its definition levels and encoded values, and
// notes its bounds b (nil for a page of nulls; taken here for the
// dictionary columns 0 and 1) for the indexes and statistics.
func (e *groupEncoder) writePage(col int, first int64, rows, nulls int32, levels, values []byte, b *bounds) error {
	c := &e.cols[col]
	z, err := zstdCodec.Encode(e.zbuf[:0], values)
	if err != nil {
		return err
	}
	e.zbuf = z
	h := format.PageHeader{
		Type:                 format.DataPageV2,
		UncompressedPageSize: int32(len(levels) + len(values)),
		CompressedPageSize:   int32(len(levels) + len(z)),
	}
	v2 := format.DataPageHeaderV2{
		NumValues:                  rows,
		NumNulls:                   nulls,
		NumRows:                    rows,
		Encoding:                   metricEncodings[col],
		DefinitionLevelsByteLength: int32(len(levels)),
		IsCompressed:               thrift.New(true),
	}
	if col >= 2 {
		v2.Statistics.NullCount = int64(nulls)
		if b != nil {
			v2.Statistics.Min, v2.Statistics.Max = b.min, b.max
			v2.Statistics.MinValue, v2.Statistics.MaxValue = b.min, b.max
		}
	}
	h.DataPageHeaderV2 = thrift.New(v2)
	hb, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
	if err != nil {
		return err
	}
	c.locations = append(c.locations, format.PageLocation{
		Offset: int64(c.data.Len()), CompressedPageSize: int32(len(hb) + len(levels) + len(z)), FirstRowIndex: first,
	})
	c.data.Write(hb)
	c.data.Write(levels)
	c.data.Write(z)
	c.uncompr += int64(len(hb)) + int64(h.UncompressedPageSize)
	c.pages++
	c.nulls += int64(nulls)
	// Page bounds for the column index and the chunk's statistics.
	switch {
	case col == 0:
		b = &bounds{[]byte(e.run), []byte(e.run)}
	case col == 1:
		lo, hi := e.keys[e.runs[0].v], e.keys[e.runs[0].v]
		for _, r := range e.runs[1:] {
			lo, hi = min(lo, e.keys[r.v]), max(hi, e.keys[r.v])
		}
		b = &bounds{[]byte(lo), []byte(hi)}
	}
	c.index.NullPages = append(c.index.NullPages, b == nil)
	c.index.NullCounts = append(c.index.NullCounts, int64(nulls))
	if b == nil {
		c.index.MinValues = append(c.index.MinValues, []byte{})
		c.index.MaxValues = append(c.index.MaxValues, []byte{})
		return nil
	}
	if col <= 1 {
		c.index.MinValues = append(c.index.MinValues, truncMin(b.min))
		c.index.MaxValues = append(c.index.MaxValues, truncMax(b.max))
	} else {
		c.index.MinValues = append(c.index.MinValues, b.min)
		c.index.MaxValues = append(c.index.MaxValues, b.max)
	}
	if !c.hasBounds || compareStat(col, b.min, c.min) < 0 {
		c.min = append(c.min[:0], b.min...)
	}
	if !c.hasBounds || compareStat(col, b.max, c.max) > 0 {
		c.max = append(c.max[:0], b.max...)
	}
	c.hasBounds = true
	return nil
}

// metricEncodings are the data page encodings of MetricRow's columns.
var metricEncodings = [metricColumns]format.Encoding{format.RLEDictionary, format.RLEDictionary, format.DeltaBinaryPacked, format.DeltaBinaryPacked, format.ByteStreamSplit}

// metricTypes are the physical types of MetricRow's columns.
var metricTypes = [metricColumns]format.Type{format.ByteArray, format.ByteArray, format.Int64, format.Int64, format.Double}

// compareStat compares two plain-encoded bounds of column col. A NaN
// bound (a page of NaN alone) never replaces another.
func compareStat(col int, a, b []byte) int {
	switch metricTypes[col] {
	case format.Int64:
		x, y := int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b))
		return cmpOrdered(x, y)
	case format.Double:
		x, y := math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b))
		switch {
		case math.IsNaN(x):
			return 0
		case math.IsNaN(y):
			return -2 // any number replaces a NaN bound, min or max
		}
		return cmpOrdered(x, y)
	}
	return bytes.Compare(a, b)
}

func cmpOrdered[T int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// columnIndexLimit is the length past which byte-array bounds are
// truncated in the column index, as parquet-go's writer does.
const columnIndexLimit = 16

func truncMin(b []byte) []byte {
	if len(b) > columnIndexLimit {
		return b[:columnIndexLimit:columnIndexLimit]
	}
	return b
}

// truncMax truncates b and increments the result, so it stays an upper
// bound.
func truncMax(b []byte) []byte {
	if len(b) <= columnIndexLimit {
		return b
	}
	v := bytes.Clone(b[:columnIndexLimit])
	for i := len(v) - 1; i >= 0; i-- {
		v[i]++
		if v[i] != 0 {
			return v
		}
	}
	for i := range v {
		v[i] = 0xFF
	}
	return v
}

// boundaryOrder is the order of a column index's pages' bounds.
func boundaryOrder(col int, idx *format.ColumnIndex) format.BoundaryOrder {
	asc, desc := true, true
	prev := -1
	for i := range idx.NullPages {
		if idx.NullPages[i] {
			continue
		}
		if prev >= 0 {
			c1 := compareStat(col, idx.MinValues[prev], idx.MinValues[i])
			c2 := compareStat(col, idx.MaxValues[prev], idx.MaxValues[i])
			if c1 > 0 || c2 > 0 {
				asc = false
			}
			if c1 < 0 || c2 < 0 {
				desc = false
			}
			if math.IsNaN(statFloat(col, idx.MinValues[i])) || math.IsNaN(statFloat(col, idx.MinValues[prev])) {
				asc, desc = false, false
			}
		}
		prev = i
	}
	switch {
	case asc:
		return format.Ascending
	case desc:
		return format.Descending
	}
	return format.Unordered
}

func statFloat(col int, b []byte) float64 {
	if metricTypes[col] != format.Double {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b))
}

// encode writes the row group as a whole Parquet file to w.
func (e *groupEncoder) encode(w *bytes.Buffer) error {
	if err := e.flushPage(); err != nil {
		return err
	}
	meta, err := metricFileTemplate()
	if err != nil {
		return err
	}
	w.WriteString("PAR1")
	// Dictionary pages.
	dicts := [2][]byte{}
	var dictUncompr [2]int64
	for col, values := range [2][]string{{e.run}, e.keys} {
		var plain []byte
		for _, v := range values {
			plain = binary.LittleEndian.AppendUint32(plain, uint32(len(v)))
			plain = append(plain, v...)
		}
		z, err := zstdCodec.Encode(nil, plain)
		if err != nil {
			return err
		}
		h := format.PageHeader{
			Type:                 format.DictionaryPage,
			UncompressedPageSize: int32(len(plain)),
			CompressedPageSize:   int32(len(z)),
			DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: int32(len(values)), Encoding: format.Plain}),
		}
		hb, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
		if err != nil {
			return err
		}
		dicts[col] = append(hb, z...)
		dictUncompr[col] = int64(len(hb) + len(plain))
	}
	rg := format.RowGroup{NumRows: e.rows, FileOffset: 4}
	for col := range e.cols {
		c := &e.cols[col]
		cc := format.ColumnChunk{MetaData: format.ColumnMetaData{
			Type:         metricTypes[col],
			PathInSchema: thrift.Slice[string]{meta.Schema[col+1].Name},
			Codec:        format.Zstd,
			NumValues:    e.rows,
			Statistics:   format.Statistics{NullCount: c.nulls},
		}}
		if c.hasBounds {
			cc.MetaData.Statistics.MinValue, cc.MetaData.Statistics.MaxValue = bytes.Clone(c.min), bytes.Clone(c.max)
		}
		start := int64(w.Len())
		cc.FileOffset = start
		if col <= 1 {
			cc.MetaData.DictionaryPageOffset = start
			w.Write(dicts[col])
			cc.MetaData.TotalUncompressedSize += dictUncompr[col]
			cc.MetaData.Encoding = thrift.Slice[format.Encoding]{format.Plain, format.RLEDictionary}
			cc.MetaData.EncodingStats = thrift.Slice[format.PageEncodingStats]{
				{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1},
				{PageType: format.DataPageV2, Encoding: format.RLEDictionary, Count: c.pages},
			}
		} else {
			cc.MetaData.Encoding = thrift.Slice[format.Encoding]{metricEncodings[col]}
			if col == 3 {
				cc.MetaData.Encoding = thrift.Slice[format.Encoding]{format.RLE, metricEncodings[col]}
			}
			cc.MetaData.EncodingStats = thrift.Slice[format.PageEncodingStats]{
				{PageType: format.DataPageV2, Encoding: metricEncodings[col], Count: c.pages},
			}
		}
		cc.MetaData.DataPageOffset = int64(w.Len())
		for i := range c.locations {
			c.locations[i].Offset += cc.MetaData.DataPageOffset
		}
		w.Write(c.data.Bytes())
		cc.MetaData.TotalUncompressedSize += c.uncompr
		cc.MetaData.TotalCompressedSize = int64(w.Len()) - start
		rg.TotalByteSize += cc.MetaData.TotalUncompressedSize
		rg.TotalCompressedSize += cc.MetaData.TotalCompressedSize
		rg.Columns = append(rg.Columns, cc)
	}
	for col := range e.cols {
		c := &e.cols[col]
		c.index.BoundaryOrder = boundaryOrder(col, &c.index)
		b, err := thrift.Marshal(new(thrift.CompactProtocol), &c.index)
		if err != nil {
			return err
		}
		rg.Columns[col].ColumnIndexOffset, rg.Columns[col].ColumnIndexLength = int64(w.Len()), int32(len(b))
		w.Write(b)
	}
	for col := range e.cols {
		b, err := thrift.Marshal(new(thrift.CompactProtocol), &format.OffsetIndex{PageLocations: e.cols[col].locations})
		if err != nil {
			return err
		}
		rg.Columns[col].OffsetIndexOffset, rg.Columns[col].OffsetIndexLength = int64(w.Len()), int32(len(b))
		w.Write(b)
	}
	fm := format.FileMetaData{
		Version:   meta.Version,
		Schema:    meta.Schema,
		NumRows:   e.rows,
		RowGroups: thrift.Slice[format.RowGroup]{rg},
		CreatedBy: meta.CreatedBy,
	}
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &fm)
	if err != nil {
		return err
	}
	w.Write(footer)
	w.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(footer))))
	w.WriteString("PAR1")
	return nil
}

// metricFileTemplate is the footer of a metrics file written by
// parquet-go (NewMetricsTableWriter): its schema elements, version and
// creator, so that the files groupEncoder writes have the same schema.
var metricFileTemplate = sync.OnceValues(func() (*format.FileMetaData, error) {
	var buf bytes.Buffer
	pw := NewMetricsTableWriter(&buf)
	if _, err := pw.Write([]MetricRow{{Run: "r", Key: "k", Step: 1, Time: 1, Value: 1}}); err != nil {
		return nil, err
	}
	if err := pw.Close(); err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return nil, err
	}
	meta := f.Metadata()
	if len(meta.Schema) != metricColumns+1 {
		return nil, fmt.Errorf("metrics schema: %d elements", len(meta.Schema))
	}
	return meta, nil
})
