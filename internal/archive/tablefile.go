package archive

import (
	"bufio"
	"fmt"
	"io"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// zstdCodec compresses every column of every table. Level: the fastest,
// roughly zstd level 1, which is what pyarrow and Arrow use by default
// (pa.Codec.default_compression_level("zstd") == 1): about twice as fast as
// the library default (level 3), for sizes within a few percent of it.
var zstdCodec = &zstd.Codec{Level: zstd.SpeedFastest}

// Row-group sizes: large enough for analytics engines to scan efficiently
// (DuckDB and Spark prefer 100k+ rows), small enough to bound the writer's
// memory (a row group is buffered whole before it is flushed).
const (
	metricRowGroup = 1 << 20
	otherRowGroup  = 1 << 16
)

// tableBufs holds the 1 MiB write buffers of table files between files: a
// first copy of many small runs writes three table files a run, and making
// (and zeroing) a new buffer for each was about a tenth of its CPU
// (docs/BENCHMARKS.md, "W&B cloud", branch i13cpu).
var tableBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<20) }}

// tableFile is a Parquet file being written under .staging/, hashed as it
// is written. Close makes it durable and describes it.
type tableFile[T any] struct {
	entry FileEntry
	full  string
	f     ObjectWriter
	buf   *bufio.Writer
	hw    *hashingWriter
	pw    *parquet.GenericWriter[T]
}

func createTableFile[T any](st Store, table, origin string, snapshot int64, rowGroup int64) (*tableFile[T], error) {
	p := newFilePath(table, origin, snapshot)
	full := st.Name(stagingDir + "/" + p)
	f, err := st.Create(stagingDir + "/" + p)
	if err != nil {
		return nil, err
	}
	tf := &tableFile[T]{entry: FileEntry{Path: p, Table: table}, full: full, f: f}
	tf.hw = newHashingWriter(f)
	tf.buf = tableBufs.Get().(*bufio.Writer)
	tf.buf.Reset(tf.hw)
	tf.pw = parquet.NewGenericWriter[T](tf.buf, writerOptions(rowGroup)...)
	return tf, nil
}

// writerOptions are the Parquet writer settings of every table file.
func writerOptions(rowGroup int64) []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.MaxRowsPerRowGroup(rowGroup),
		parquet.Compression(zstdCodec),
		// The run and key columns repeat a few dictionary values: bounds in
		// each page header would cost a dictionary lookup and a string
		// comparison per row (twice what the rest of the encoding does) and
		// tell a reader nothing the column index and the row group
		// statistics, which are kept, do not.
		parquet.SkipPageStatistics("run"),
		parquet.SkipPageStatistics("key"),
		parquet.CreatedBy("runferry", Version, ""),
		parquet.KeyValueMetadata("runferry.format_version", fmt.Sprint(FormatVersion)),
	}
}

// NewMetricsTableWriter returns a writer of metrics rows to w with the
// settings of the archive's metrics files (schema, compression, row
// groups): what a RunWriter writes its sorted points through, exported for
// benchmarks and tools. Rows must be written in archive order.
func NewMetricsTableWriter(w io.Writer) *parquet.GenericWriter[MetricRow] {
	return parquet.NewGenericWriter[MetricRow](w, writerOptions(metricRowGroup)...)
}

// Write appends rows.
func (tf *tableFile[T]) Write(rows []T) error {
	n, err := tf.pw.Write(rows)
	tf.entry.Rows += int64(n)
	if err != nil {
		return fmt.Errorf("writing %s: %w", tf.full, err)
	}
	return nil
}

// Close writes the footer, flushes, fsyncs the file and its folder, and
// returns the file's manifest entry.
func (tf *tableFile[T]) Close() (FileEntry, error) {
	err := tf.pw.Close()
	if err == nil {
		err = tf.buf.Flush()
	}
	tf.releaseBuf()
	if err == nil {
		err = tf.f.Commit()
	} else {
		tf.f.Abort()
	}
	if err != nil {
		return FileEntry{}, fmt.Errorf("writing %s: %w", tf.full, err)
	}
	tf.entry.Bytes, tf.entry.SHA256 = tf.hw.n, tf.hw.sum()
	return tf.entry, nil
}

// Discard abandons the file.
func (tf *tableFile[T]) Discard() {
	tf.releaseBuf()
	tf.f.Abort()
}

// releaseBuf gives the write buffer back to tableBufs, once; nothing is
// written to the file after.
func (tf *tableFile[T]) releaseBuf() {
	if tf.buf == nil {
		return
	}
	tf.buf.Reset(nil)
	tableBufs.Put(tf.buf)
	tf.buf = nil
}

// writeTable writes rows as one whole file; no rows writes no file.
func writeTable[T any](st Store, table, origin string, snapshot int64, rows []T) ([]FileEntry, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	tf, err := createTableFile[T](st, table, origin, snapshot, otherRowGroup)
	if err != nil {
		return nil, err
	}
	if err := tf.Write(rows); err != nil {
		tf.Discard()
		return nil, err
	}
	e, err := tf.Close()
	if err != nil {
		return nil, err
	}
	return []FileEntry{e}, nil
}
