package wandbcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// URLRefreshes is how many times a run's export URLs are asked for again
// when storage refuses one (an expired signed URL).
const URLRefreshes = 3

// exportHistory reads the run's history from its parquet exports and their
// live tail, calling fn for every row in step order (a row's points are
// fn's only until it returns: see convertedRows). handled is false
// (and nothing was read) when the run has no exports: the server does
// not know parquetHistory, or answers neither URLs nor a live tail; the
// caller then scans the history with the paged query.
//
// The exports are those the run's listing page carried in export form
// (fetched now if it was not yet: see exportPage in listing.go), asked
// for again once when one of their downloads fails for good (the run may
// have gone or changed since), else asked for now.
//
// When runs are read one after the other in listing order, the exports
// of the next ExportsAhead runs whose pages were fetched in export form
// are downloaded while this one is read (ahead.go).
//
// The export files are downloaded one at a time, each held in memory up
// to exportInMemory bytes, else in a temporary file (removed when read),
// and read row by row, so memory does not grow with the run. Rows of the live tail (steps from the first live step on) are
// read with the paged history query, up to last.
func (s *Source) exportHistory(ctx context.Context, run schema.Ref, project, id string, last int64, fn func(row) error) (handled bool, err error) {
	s.exportPage(ctx, run.ID)
	s.fetchAhead(run.ID)
	var live []int64
	var files []*exportFile
	pre, err := s.takeFetched(ctx, run.ID)
	if err != nil {
		return false, err
	}
	listed := pre != nil
	if pre != nil {
		live, files, err = pre.live, pre.files, pre.err
	} else {
		var urls []string
		e, ok := s.takeExports(run.ID)
		listed = ok
		if ok {
			urls, live = e.URLs, e.LiveSteps
		} else {
			urls, live, err = s.api.ParquetHistory(ctx, s.cfg.Entity, project, id)
		}
		if errors.Is(err, wandbapi.ErrNoParquetHistory) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if len(urls) == 0 && len(live) == 0 {
			return false, nil
		}
		files, err = s.downloadExports(ctx, project, id, urls)
	}
	if err != nil && listed && ctx.Err() == nil && fault.KindOf(err) == fault.KindPermanent {
		// The listing's URLs may be stale (the run was deleted, or
		// exported again, since): ask for them again, once.
		var urls []string
		urls, live, err = s.api.ParquetHistory(ctx, s.cfg.Entity, project, id)
		if err != nil {
			return true, err
		}
		if len(urls) == 0 && len(live) == 0 {
			return false, nil
		}
		files, err = s.downloadExports(ctx, project, id, urls)
	}
	if err != nil {
		return true, err
	}
	minLive := int64(math.MaxInt64)
	if len(live) > 0 {
		minLive = slices.Min(live)
	}
	// Files are read in order of their first step; their steps must
	// increase throughout (W&B's exports are partitions of the history).
	prev := int64(math.MinInt64)
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	slices.SortStableFunc(files, func(a, b *exportFile) int { return cmpInt(a.first, b.first) })
	for _, f := range files {
		err := f.convertedRows(func(r row) error {
			if r.step >= minLive {
				return nil // the live tail has it
			}
			if r.step <= prev {
				return fault.Permanent(fmt.Errorf("wandb: run %s: parquet history export %d: step %d after step %d (exports overlap or are not in step order)", run.ID, f.index, r.step, prev))
			}
			prev = r.step
			return fn(r)
		})
		if err != nil {
			return true, err
		}
		f.close()
	}
	if minLive != math.MaxInt64 && minLive <= last {
		return true, s.pagedHistory(ctx, run, project, id, minLive, last, fn)
	}
	return true, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// exportInMemory is the size up to which a downloaded export is held in
// memory rather than in a temporary file (a run of 100 steps of 10 keys
// exports about 12 KB). With the exports of ExportsAhead runs downloaded
// ahead and the runs in flight, at most a few MiB.
const exportInMemory = 256 << 10

// exportFile is a downloaded parquet export.
type exportFile struct {
	index int // its position in the server's list
	body  *wandbapi.Spooled
	pf    *parquet.File
	first int64 // its first row's step
}

func (e *exportFile) close() {
	if e.body != nil {
		e.body.Close()
		e.body = nil
	}
}

// downloadExports downloads every export file, asking for fresh URLs (at
// most URLRefreshes times) when storage refuses one.
func (s *Source) downloadExports(ctx context.Context, project, id string, urls []string) ([]*exportFile, error) {
	var files []*exportFile
	fail := func(err error) ([]*exportFile, error) {
		for _, f := range files {
			f.close()
		}
		return nil, err
	}
	about := func(i int) context.Context {
		return wandbapi.About(ctx, fmt.Sprintf("run %s/%s/%s: history export %d of %d", s.cfg.Entity, project, id, i+1, len(urls)))
	}
	for i := 0; i < len(urls); i++ {
		body, err := s.api.DownloadSpooled(about(i), urls[i], s.cfg.TempDir, exportInMemory)
		for refresh := 0; errors.Is(err, wandbapi.ErrURLRefused) && refresh < URLRefreshes; refresh++ {
			// The URL expired: ask again; the list's order may differ,
			// so start over.
			var fresh []string
			fresh, _, err = s.api.ParquetHistory(ctx, s.cfg.Entity, project, id)
			if err != nil {
				return fail(err)
			}
			if len(fresh) != len(urls) {
				return fail(fault.Retryable(fmt.Errorf("wandb: run %s/%s/%s: the number of parquet history exports changed (%d, then %d)", s.cfg.Entity, project, id, len(urls), len(fresh)), 0))
			}
			for _, f := range files {
				f.close()
			}
			files, urls, i = nil, fresh, 0
			body, err = s.api.DownloadSpooled(about(0), urls[0], s.cfg.TempDir, exportInMemory)
		}
		if errors.Is(err, wandbapi.ErrURLRefused) {
			return fail(fault.Retryable(fmt.Errorf("wandb: run %s/%s/%s: %w (asked for fresh URLs %d times)", s.cfg.Entity, project, id, err, URLRefreshes), 0))
		}
		if err != nil {
			return fail(fmt.Errorf("wandb: run %s/%s/%s: history export %d of %d: %w", s.cfg.Entity, project, id, i+1, len(urls), err))
		}
		ef := &exportFile{index: i, body: body}
		files = append(files, ef)
		ef.pf, err = parquet.OpenFile(body, body.Size)
		if err != nil {
			return fail(fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s: parquet history export %d: %v", s.cfg.Entity, project, id, i, err)))
		}
		if ef.first, err = ef.firstStep(); err != nil {
			return fail(err)
		}
	}
	return files, nil
}

// firstStep returns the step of the file's first row, as
// wandbfile.ValueInt takes it from the row (0 when null or not an
// integer; math.MaxInt64 for a file of no rows). A flat numeric file's
// is read from the first page of its _step column alone (the other
// columns are not decoded: for a run of a few hundred points that was
// most of the cost of reading its export); any other file's from its
// first row, decoded.
func (e *exportFile) firstStep() (int64, error) {
	if fl := flatNumeric(e.pf.Schema()); fl != nil {
		for g, rg := range e.pf.RowGroups() {
			if rg.NumRows() == 0 {
				continue
			}
			chunks := rg.ColumnChunks()
			if len(chunks) != fl.columns {
				return 0, fault.Permanent(fmt.Errorf("parquet history export %d: row group %d has %d columns, want %d", e.index, g, len(chunks), fl.columns))
			}
			v, err := firstValue(chunks[fl.step].Pages())
			if err != nil {
				return 0, fault.Permanent(fmt.Errorf("parquet history export %d: row group %d: column %d: %v", e.index, g, fl.step, err))
			}
			if v.IsNull() {
				return 0, nil
			}
			st, _ := wandbfile.ValueInt(anyNumber(v))
			return st, nil
		}
		return math.MaxInt64, nil
	}
	first := int64(math.MaxInt64)
	err := e.rows(func(m map[string]any) error {
		first, _ = wandbfile.ValueInt(m["_step"])
		return errStop
	})
	if err != nil && err != errStop {
		return 0, err
	}
	return first, nil
}

// firstValue returns the first value of a column chunk of rows, and
// closes its pages.
func firstValue(pages parquet.Pages) (parquet.Value, error) {
	defer pages.Close()
	buf := make([]parquet.Value, 1)
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return parquet.Value{}, errors.New("no value in a row group of rows")
		}
		if err != nil {
			return parquet.Value{}, err
		}
		if p.NumValues() == 0 {
			parquet.Release(p)
			continue
		}
		n, err := p.Values().ReadValues(buf)
		parquet.Release(p)
		if n == 1 {
			return buf[0], nil
		}
		if err == nil || err == io.EOF {
			err = errors.New("a page of values holds none")
		}
		return parquet.Value{}, err
	}
}

// convertedRows calls fn for every row of the file, converted as
// convertRow converts the row rows decodes; a file of flat numeric
// columns (what W&B's exports of scalar metrics hold) is converted
// straight from its parquet rows (flatNumeric), without the map. A row's
// points are fn's only until it returns (a flat file's rows share one
// array, reused): fn copies those it keeps.
func (e *exportFile) convertedRows(fn func(row) error) error {
	if fl := flatNumeric(e.pf.Schema()); fl != nil {
		return e.flatRows(fl, fn)
	}
	return e.rows(func(m map[string]any) error { return fn(convertRow(m)) })
}

// flat is how the leaf columns of a flat numeric export file convert.
type flat struct {
	columns    int   // the number of columns
	step, time int   // the columns of _step and _timestamp; -1: none
	metrics    []int // the metric columns, in the order of their keys
	keys       []string
}

// flatNumeric returns how to convert the rows of a file whose every
// column is a top-level leaf of a numeric or boolean type (not JSON, not
// text, not nested, not repeated) and which has a _step column; else nil.
// Conversion follows wandbfile.ConvertValues: _step the step (when an
// integer), _timestamp the time, _runtime and _wandb left out, every
// other key a metric point, booleans 0 or 1, points in key order.
func flatNumeric(sch *parquet.Schema) *flat {
	fl := &flat{columns: len(sch.Fields()), step: -1, time: -1}
	for i, f := range sch.Fields() {
		if !f.Leaf() || f.Repeated() || isJSON(f.Type().LogicalType()) {
			return nil
		}
		switch f.Type().Kind() {
		case parquet.Boolean, parquet.Int32, parquet.Int64, parquet.Float, parquet.Double:
		default:
			return nil
		}
		switch f.Name() {
		case wandbfile.KeyStep:
			if f.Type().Kind() == parquet.Boolean {
				return nil // not a step to ConvertValues
			}
			fl.step = i
		case wandbfile.KeyTimestamp:
			fl.time = i
		case wandbfile.KeyRuntime, wandbfile.KeyWandb:
		default:
			fl.metrics = append(fl.metrics, i)
		}
	}
	if fl.step < 0 {
		return nil
	}
	names := sch.Fields()
	slices.SortFunc(fl.metrics, func(a, b int) int { return strings.Compare(names[a].Name(), names[b].Name()) })
	for _, c := range fl.metrics {
		// A copy: the schema's names point into the file's footer, which
		// a key kept after the file is closed (the engine's cursors, the
		// ledger's) would keep whole, one footer a run.
		fl.keys = append(fl.keys, strings.Clone(names[c].Name()))
	}
	return fl
}

// flatValue is a numeric or boolean parquet value as a float64.
func flatValue(v parquet.Value) float64 {
	switch v.Kind() {
	case parquet.Boolean:
		if v.Boolean() {
			return 1
		}
		return 0
	case parquet.Int32:
		return float64(v.Int32())
	case parquet.Int64:
		return float64(v.Int64())
	case parquet.Float:
		return float64(v.Float())
	}
	return v.Double()
}

// flatBatch is the number of rows flatRows converts at a time.
const flatBatch = 1024

// flatRows converts the rows of a flat numeric file (see flatNumeric). The
// file is read column by column (flatColumn: each page's values decoded
// into typed arrays), not as parquet rows of boxed values, and a batch of
// rows is converted from the columns' arrays.
func (e *exportFile) flatRows(fl *flat, fn func(row) error) error {
	fields := e.pf.Schema().Fields()
	need := append([]int{fl.step}, fl.metrics...)
	if fl.time >= 0 {
		need = append(need, fl.time)
	}
	cols := make([]*flatColumn, fl.columns)
	for _, c := range need {
		k := fields[c].Type().Kind()
		cols[c] = &flatColumn{index: c, isInt: k == parquet.Int32 || k == parquet.Int64}
		if fields[c].Optional() {
			cols[c].maxDef = 1
		}
	}
	step := cols[fl.step]
	var slab []schema.Metric
	for g, rg := range e.pf.RowGroups() {
		chunks := rg.ColumnChunks()
		if len(chunks) != fl.columns {
			return fault.Permanent(fmt.Errorf("parquet history export %d: row group %d has %d columns, want %d", e.index, g, len(chunks), fl.columns))
		}
		for _, c := range need {
			cols[c].start(chunks[c].Pages())
		}
		err := func() error {
			defer func() {
				for _, c := range need {
					cols[c].stop()
				}
			}()
			for left := rg.NumRows(); left > 0; {
				n := int(min(left, flatBatch))
				left -= int64(n)
				for _, c := range need {
					if err := cols[c].read(n); err != nil {
						return fault.Permanent(fmt.Errorf("parquet history export %d: row group %d: %v", e.index, g, err))
					}
				}
				// The rows' points share one array, reused from batch
				// to batch (each row's slice capped at its own points;
				// fn copies what it keeps).
				if cap(slab) < n*len(fl.metrics) {
					slab = make([]schema.Metric, 0, n*len(fl.metrics))
				}
				slab = slab[:0]
				for i := range n {
					var out row
					if !step.null[i] {
						var st int64
						ok := true
						if step.isInt {
							st = step.ints[i]
						} else {
							st, ok = wandbfile.ValueInt(step.num[i])
						}
						if ok {
							out.step = st
						}
					}
					var at int64
					if fl.time >= 0 {
						if t := cols[fl.time]; !t.null[i] {
							at, _ = wandbfile.TimestampMillis(t.num[i])
						}
					}
					begin := len(slab)
					for k, c := range fl.metrics {
						if col := cols[c]; !col.null[i] {
							slab = append(slab, schema.Metric{Key: fl.keys[k], Value: col.num[i], Step: out.step, Time: at})
						}
					}
					out.points = slab[begin:len(slab):len(slab)]
					if err := fn(out); err != nil {
						return err
					}
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// flatColumn reads one leaf column of a flat export file (a top-level
// numeric or boolean column, required or optional, not repeated) page by
// page: each page's values are decoded into typed arrays (straight from
// the page's data, or its dictionary's, for numeric columns; value by
// value for the others), and read hands them out a batch of rows at a
// time in num, ints and null.
type flatColumn struct {
	index  int  // the column's index
	isInt  bool // an INT32 or INT64 column: ints holds the exact values
	maxDef byte // 1 for an optional column, 0 for a required one

	pages parquet.Pages
	// The current page's rows from pos on: row i is null when pnull[i],
	// else pnum[i] (and pints[i] for an integer column).
	pnum  []float64
	pints []int64
	pnull []bool
	pos   int
	buf   []parquet.Value // for pages decoded value by value

	// The batch read last.
	num  []float64
	ints []int64
	null []bool
}

func (c *flatColumn) start(p parquet.Pages) {
	c.pages, c.pos, c.pnum, c.pints, c.pnull = p, 0, c.pnum[:0], c.pints[:0], c.pnull[:0]
}

func (c *flatColumn) stop() {
	if c.pages != nil {
		c.pages.Close()
		c.pages = nil
	}
}

// read makes num, ints and null the column's next n rows.
func (c *flatColumn) read(n int) error {
	c.num, c.ints, c.null = c.num[:0], c.ints[:0], c.null[:0]
	for len(c.null) < n {
		if c.pos == len(c.pnull) {
			p, err := c.pages.ReadPage()
			if err == io.EOF {
				return fmt.Errorf("column %d ends before the row group's last row", c.index)
			}
			if err != nil {
				return fmt.Errorf("column %d: %v", c.index, err)
			}
			err = c.load(p)
			parquet.Release(p)
			if err != nil {
				return fmt.Errorf("column %d: %v", c.index, err)
			}
			continue
		}
		m := min(n-len(c.null), len(c.pnull)-c.pos)
		c.num = append(c.num, c.pnum[c.pos:c.pos+m]...)
		c.null = append(c.null, c.pnull[c.pos:c.pos+m]...)
		if c.isInt {
			c.ints = append(c.ints, c.pints[c.pos:c.pos+m]...)
		}
		c.pos += m
	}
	return nil
}

// load decodes page p into pnum, pints and pnull.
func (c *flatColumn) load(p parquet.Page) error {
	n := int(p.NumRows())
	c.pos = 0
	c.pnum, c.pnull = resize(c.pnum, n), resize(c.pnull, n)
	if c.isInt {
		c.pints = resize(c.pints, n)
	}
	if c.loadTyped(p, n) {
		return nil
	}
	// Value by value: booleans, and any page the typed path does not
	// know.
	if cap(c.buf) < n {
		c.buf = make([]parquet.Value, n)
	}
	buf := c.buf[:n]
	r := p.Values()
	got := 0
	for got < n {
		k, err := r.ReadValues(buf[got:])
		got += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if k == 0 {
			break
		}
	}
	if got != n {
		return fmt.Errorf("a page of %d rows holds %d values", n, got)
	}
	for i, v := range buf {
		c.pnull[i] = v.IsNull()
		if c.pnull[i] {
			continue
		}
		c.pnum[i] = flatValue(v)
		if c.isInt {
			c.pints[i], _ = anyNumber(v).(int64)
		}
	}
	return nil
}

// loadTyped decodes a page of a numeric column from its data (and
// dictionary) arrays; false when the page is not one it knows.
func (c *flatColumn) loadTyped(p parquet.Page, n int) bool {
	var defs []byte
	if c.maxDef > 0 {
		if defs = p.DefinitionLevels(); len(defs) != n {
			return false
		}
	}
	var idx []int32
	data := p.Data()
	if d := p.Dictionary(); d != nil {
		if data.Kind() != encoding.Int32 {
			return false
		}
		idx = data.Int32()
		data = d.Page().Data()
	}
	switch data.Kind() {
	case encoding.Double:
		return spread(c, defs, data.Double(), idx)
	case encoding.Float:
		return spread(c, defs, data.Float(), idx)
	case encoding.Int32:
		return spread(c, defs, data.Int32(), idx)
	case encoding.Int64:
		return spread(c, defs, data.Int64(), idx)
	}
	return false
}

// spread sets the page's rows from vals, the page's non-null values in
// order (with idx, the indexes of those values in vals, a dictionary);
// false when their number is not that of the non-null rows or an index is
// out of range.
func spread[T int32 | int64 | float32 | float64](c *flatColumn, defs []byte, vals []T, idx []int32) bool {
	j := 0
	for i := range c.pnull {
		if defs != nil && defs[i] != c.maxDef {
			c.pnull[i] = true
			continue
		}
		var v T
		if idx != nil {
			if j >= len(idx) || idx[j] < 0 || int(idx[j]) >= len(vals) {
				return false
			}
			v = vals[idx[j]]
		} else {
			if j >= len(vals) {
				return false
			}
			v = vals[j]
		}
		j++
		c.pnull[i] = false
		c.pnum[i] = float64(v)
		if c.isInt {
			c.pints[i] = int64(v)
		}
	}
	if idx != nil {
		return j == len(idx)
	}
	return j == len(vals)
}

// resize returns s with length n, reusing its array when it can.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// anyNumber is a numeric parquet value as wandbfile.ValueInt takes it:
// integers as int64, the others as float64.
func anyNumber(v parquet.Value) any {
	switch v.Kind() {
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Int64:
		return v.Int64()
	}
	return flatValue(v)
}

// rows calls fn for every row of the file, decoded: null columns left
// out, JSON columns parsed (W&B's extended JSON), nested groups as maps.
// The map passed to fn is reused for the next row: fn must not keep it.
func (e *exportFile) rows(fn func(map[string]any) error) error {
	sch := e.pf.Schema()
	fields := sch.Fields()
	type col struct {
		name   string
		json   bool
		nested bool
	}
	// leaf column index -> top-level field
	var cols []col
	nested := false
	// The names copied, as in flatNumeric: they become the rows' keys.
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = strings.Clone(f.Name())
	}
	for i, f := range fields {
		lt := f.Type().LogicalType()
		c := col{name: names[i], json: isJSON(lt), nested: !f.Leaf()}
		nested = nested || c.nested
		n := len(parquet.NewSchema("", parquet.Group{f.Name(): f}).Columns())
		for range n {
			cols = append(cols, c)
		}
	}
	r := parquet.NewReader(e.pf)
	defer r.Close()
	buf := make([]parquet.Row, 64)
	// One map for every row: fn must not keep it (its values it may).
	m := make(map[string]any, len(fields))
	for {
		n, err := r.ReadRows(buf)
		for _, pr := range buf[:n] {
			clear(m)
			for _, v := range pr {
				ci := v.Column()
				if ci < 0 || ci >= len(cols) || v.IsNull() || cols[ci].nested {
					continue
				}
				c := cols[ci]
				switch v.Kind() {
				case parquet.Boolean:
					m[c.name] = v.Boolean()
				case parquet.Int32:
					m[c.name] = int64(v.Int32())
				case parquet.Int64:
					m[c.name] = v.Int64()
				case parquet.Float:
					m[c.name] = float64(v.Float())
				case parquet.Double:
					m[c.name] = v.Double()
				case parquet.ByteArray, parquet.FixedLenByteArray:
					if c.json {
						x, err := wandbfile.ParseValueJSON(string(v.ByteArray()))
						if err != nil {
							return fault.Permanent(fmt.Errorf("parquet history export %d: column %s: %v", e.index, c.name, err))
						}
						m[c.name] = x
					} else {
						m[c.name] = string(v.ByteArray())
					}
				}
			}
			if nested {
				var whole any
				if err := sch.Reconstruct(&whole, pr); err != nil {
					return fault.Permanent(fmt.Errorf("parquet history export %d: %v", e.index, err))
				}
				if wm, ok := whole.(map[string]any); ok {
					for i, f := range fields {
						if !f.Leaf() {
							if x := dropNulls(wm[f.Name()]); x != nil {
								m[names[i]] = x
							}
						}
					}
				}
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fault.Permanent(fmt.Errorf("parquet history export %d: %v", e.index, err))
		}
	}
}

// dropNulls removes nil values from maps, recursively; a map left empty
// is nil.
func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = dropNulls(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
		if len(x) == 0 {
			return nil
		}
	case []any:
		for i, e := range x {
			x[i] = dropNulls(e)
		}
	}
	return v
}

// isJSON tells a JSON-annotated column.
func isJSON(lt *format.LogicalType) bool {
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.JsonType)
	return ok
}
