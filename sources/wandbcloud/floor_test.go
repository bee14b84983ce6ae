package wandbcloud

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
)

// TestExportFileMetricsAsRows: ExportFileMetrics (bench/wandbfloor's
// reading of an export file on disk) gives, for a generated run's export
// (the bytes the test server sends), the points convertRow gives for the
// same rows as JSON maps (the general path), in pages of at most
// PageSize.
func TestExportFileMetricsAsRows(t *testing.T) {
	keys := []string{"m00", "m01", "m02"}
	const steps = 4000 // 12,000 points: two pages
	g := wandbtest.BenchRun(3, steps, keys, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "run00003.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WriteExport(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var want []schema.Metric
	for i := range steps {
		m := map[string]any{"_step": float64(i), "_timestamp": g.Time(i)}
		for k, key := range keys {
			m[key] = g.Value(i, k)
		}
		want = append(want, convertRow(m).points...)
	}
	var got []schema.Metric
	pages := 0
	err = ExportFileMetrics(path, func(page []schema.Metric) error {
		if len(page) > PageSize+pageMargin {
			t.Errorf("page of %d points", len(page))
		}
		pages++
		got = append(got, page...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != steps*len(keys) || pages != 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d points in %d pages, want %d in 2; equal: %v", len(got), pages, len(want), reflect.DeepEqual(got, want))
	}
}
