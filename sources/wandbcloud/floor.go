package wandbcloud

import (
	"fmt"
	"os"

	"github.com/parquet-go/parquet-go"

	"github.com/runferry/runferry/schema"
)

// ExportFileMetrics reads the metric points of one parquet history export
// file on disk, decoded as the source decodes a downloaded export
// (convertedRows: flat numeric files column by column), and calls fn with
// them in pages of up to PageSize points, in step order. Rows' non-numeric
// values are not read. It is for benchmarks (bench/wandbfloor): the
// machine's floor of an export is this decoding and the archive's writing,
// without a server, a listing or a download. The file is left as it is.
func ExportFileMetrics(path string, fn func([]schema.Metric) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	e := &exportFile{pf: pf}
	page := make([]schema.Metric, 0, PageSize+pageMargin)
	err = e.convertedRows(func(r row) error {
		page = append(page, r.points...)
		if len(page) >= PageSize {
			if err := fn(page); err != nil {
				return err
			}
			page = make([]schema.Metric, 0, PageSize+pageMargin)
		}
		return nil
	})
	if err == nil && len(page) > 0 {
		err = fn(page)
	}
	return err
}
