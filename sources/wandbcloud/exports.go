package wandbcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
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
// live tail, calling fn for every row in step order. handled is false
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
// The export files are downloaded one at a time into temporary files
// (removed when read) and read row by row, so memory does not grow with
// the run. Rows of the live tail (steps from the first live step on) are
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

// exportFile is a downloaded parquet export.
type exportFile struct {
	index int // its position in the server's list
	f     *os.File
	pf    *parquet.File
	first int64 // its first row's step
}

func (e *exportFile) close() {
	if e.f != nil {
		e.f.Close()
		os.Remove(e.f.Name())
		e.f = nil
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
	for i := 0; i < len(urls); i++ {
		tmp, size, err := s.api.DownloadTemp(ctx, urls[i], s.cfg.TempDir)
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
			tmp, size, err = s.api.DownloadTemp(ctx, urls[0], s.cfg.TempDir)
		}
		if errors.Is(err, wandbapi.ErrURLRefused) {
			return fail(fault.Retryable(fmt.Errorf("wandb: run %s/%s/%s: %w (asked for fresh URLs %d times)", s.cfg.Entity, project, id, err, URLRefreshes), 0))
		}
		if err != nil {
			return fail(err)
		}
		ef := &exportFile{index: i, f: tmp}
		files = append(files, ef)
		ef.pf, err = parquet.OpenFile(tmp, size)
		if err != nil {
			return fail(fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s: parquet history export %d: %v", s.cfg.Entity, project, id, i, err)))
		}
		ef.first = math.MaxInt64
		err = ef.rows(func(m map[string]any) error {
			ef.first, _ = wandbfile.ValueInt(m["_step"])
			return errStop
		})
		if err != nil && err != errStop {
			return fail(err)
		}
	}
	return files, nil
}

// convertedRows calls fn for every row of the file, converted as
// convertRow converts the row rows decodes; a file of flat numeric
// columns (what W&B's exports of scalar metrics hold) is converted
// straight from its parquet rows (flatNumeric), without the map.
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
		fl.keys = append(fl.keys, names[c].Name())
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

// flatRows converts the rows of a flat numeric file (see flatNumeric).
func (e *exportFile) flatRows(fl *flat, fn func(row) error) error {
	r := parquet.NewReader(e.pf)
	defer r.Close()
	buf := make([]parquet.Row, 256)
	for {
		n, err := r.ReadRows(buf)
		// The rows' points share one array a batch (each row's slice
		// capped at its own points).
		slab := make([]schema.Metric, 0, n*len(fl.metrics))
		for _, pr := range buf[:n] {
			if len(pr) != fl.columns {
				return fault.Permanent(fmt.Errorf("parquet history export %d: a row of %d values, want one a column", e.index, len(pr)))
			}
			var out row
			if v := pr[fl.step]; !v.IsNull() {
				if st, ok := wandbfile.ValueInt(anyNumber(v)); ok {
					out.step = st
				}
			}
			var at int64
			if fl.time >= 0 {
				if v := pr[fl.time]; !v.IsNull() {
					at, _ = wandbfile.TimestampMillis(flatValue(v))
				}
			}
			start := len(slab)
			for i, c := range fl.metrics {
				if v := pr[c]; !v.IsNull() {
					slab = append(slab, schema.Metric{Key: fl.keys[i], Value: flatValue(v), Step: out.step, Time: at})
				}
			}
			out.points = slab[start:len(slab):len(slab)]
			if err := fn(out); err != nil {
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
	for _, f := range fields {
		lt := f.Type().LogicalType()
		c := col{name: f.Name(), json: isJSON(lt), nested: !f.Leaf()}
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
					for _, f := range fields {
						if !f.Leaf() {
							if x := dropNulls(wm[f.Name()]); x != nil {
								m[f.Name()] = x
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
