package archive

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
)

// writeMetrics writes the run's sorted points as its metrics file.
//
// A run that spilled (more than SortBufferPoints points) and whose keys
// kept step order is encoded one row group per worker in parallel: each
// worker reads its rows straight from the spill file and encodes and
// compresses them as a small Parquet file in memory, whose row group is then
// copied verbatim (no re-encoding) into the metrics file, in order. At most
// one row group per worker is in memory. Any other run is written by one
// goroutine, row group after row group the same way. Row groups are
// encoded by groupEncoder (not parquet-go's row writer), so a file's bytes
// do not depend on the number of workers.
func (rw *RunWriter) writeMetrics() (FileEntry, error) {
	tf, err := createTableFile[MetricRow](rw.w.st, TableMetrics, rw.origin, rw.snapshot, metricRowGroup)
	if err != nil {
		return FileEntry{}, err
	}
	pieces, parallel, err := rw.metrics.layout()
	if err == nil {
		if workers := min(runtime.GOMAXPROCS(0), maxMetricWorkers); parallel && workers > 1 && rw.metrics.count > metricRowGroup {
			err = rw.writeMetricsParallel(tf, pieces, workers)
		} else {
			err = rw.writeMetricsSerial(tf)
		}
	}
	rw.metrics.discard()
	if err != nil {
		tf.Discard()
		return FileEntry{}, err
	}
	return tf.Close()
}

// maxMetricWorkers caps the row groups encoded at once (each holds up to a
// row group of encoded pages in memory).
const maxMetricWorkers = 4

// writeMetricsSerial writes the points in archive order into tf, one row
// group of metricRowGroup rows (the last fewer) after another, each encoded
// by a groupEncoder and copied in: the same row groups, so the same bytes,
// as writeMetricsParallel writes.
func (rw *RunWriter) writeMetricsSerial(tf *tableFile[MetricRow]) error {
	enc := groupEncoders.Get().(*groupEncoder)
	defer groupEncoders.Put(enc)
	buf := new(bytes.Buffer)
	enc.reset(rw.origin)
	flush := func() error {
		buf.Reset()
		if err := enc.encode(buf); err != nil {
			return err
		}
		enc.reset(rw.origin)
		return copyRowGroup(tf, buf)
	}
	err := rw.metrics.finish(func(key string, pts []pt) error {
		for len(pts) > 0 {
			n := min(int64(len(pts)), metricRowGroup-enc.count())
			if err := enc.add(key, pts[:n]); err != nil {
				return err
			}
			pts = pts[n:]
			if enc.count() == metricRowGroup {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil && enc.count() > 0 {
		err = flush()
	}
	return err
}

// writeMetricsParallel writes the rows described by pieces (see
// metricSorter.layout) into tf, encoding row groups on workers goroutines.
func (rw *RunWriter) writeMetricsParallel(tf *tableFile[MetricRow], pieces []piece, workers int) error {
	total := rw.metrics.count
	groups := int((total + metricRowGroup - 1) / metricRowGroup)
	type result struct {
		buf *bytes.Buffer
		err error
	}
	results := make([]chan result, groups)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	jobs := make(chan int)
	tokens := make(chan struct{}, workers) // row groups dispatched and not yet copied
	var failed atomic.Bool
	bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pts := make([]pt, emitBatch)
			enc := groupEncoders.Get().(*groupEncoder)
			defer groupEncoders.Put(enc)
			for g := range jobs {
				if failed.Load() {
					results[g] <- result{}
					continue
				}
				buf := bufs.Get().(*bytes.Buffer)
				buf.Reset()
				enc.reset(rw.origin)
				lo := int64(g) * metricRowGroup
				hi := min(lo+metricRowGroup, total)
				err := rw.metrics.emitRows(pieces, lo, hi, pts, enc.add)
				if err == nil {
					err = enc.encode(buf)
				}
				results[g] <- result{buf: buf, err: err}
			}
		}()
	}
	go func() {
		for g := range groups {
			tokens <- struct{}{}
			jobs <- g
		}
		close(jobs)
	}()
	var firstErr error
	for g := range groups {
		r := <-results[g]
		if firstErr == nil {
			firstErr = r.err
			if firstErr == nil {
				firstErr = copyRowGroup(tf, r.buf)
			}
			if firstErr != nil {
				failed.Store(true)
			}
		}
		if r.buf != nil {
			bufs.Put(r.buf)
		}
		<-tokens
	}
	wg.Wait()
	return firstErr
}

// copyRowGroup appends the single row group of the Parquet file in buf to
// tf; the writers' settings are the same, so its pages are copied as they
// are.
func copyRowGroup(tf *tableFile[MetricRow], buf *bytes.Buffer) error {
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return fmt.Errorf("metrics row group: %w", err)
	}
	for _, g := range f.RowGroups() {
		n, err := tf.pw.WriteRowGroup(g)
		tf.entry.Rows += n
		if err != nil {
			return fmt.Errorf("writing %s: %w", tf.full, err)
		}
	}
	return nil
}
