package wandbdir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The fast path (wandbfile.PeekRecord, Row.Scan and RowConverter's fast
// conversion) must give exactly what wandbfile.Decode and ConvertValues
// give wherever it accepts its input. wandbfile's tests compare the two
// record by record (on real logs and fuzzed records); this one compares
// what the source yields with and without it.

// TestFastPathEndToEnd reads runs with and without the fast path and
// compares everything the source yields, page by page: a generated log of
// several pages of points, the SDK-made fixtures and the real samples.
func TestFastPathEndToEnd(t *testing.T) {
	gen := t.TempDir()
	dir := filepath.Join(gen, "bench", "wandb", "run-20240601_120000-bench1")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchLog(filepath.Join(dir, "run-bench1.wandb"), 1500); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{gen, "../../testdata/wandb/fixtures", "../../../shared/samples/wandb"} {
		if _, err := os.Stat(root); err != nil {
			continue
		}
		read := func(fast bool) []any {
			defer func(old bool) { fastPath = old }(fastPath)
			fastPath = fast
			src, err := New(Config{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			ctx := context.Background()
			var out []any
			for exp, err := range src.Experiments(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				for run, err := range src.Runs(ctx, exp.Origin) {
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, run)
					for page, err := range src.Metrics(ctx, run.Origin) {
						out = append(out, page, err)
					}
					for page, err := range src.RichValues(ctx, run.Origin) {
						out = append(out, page, err)
					}
					for page, err := range src.Logs(ctx, run.Origin) {
						out = append(out, page, err)
					}
				}
			}
			return out
		}
		fast, slow := read(true), read(false)
		if len(fast) != len(slow) {
			t.Fatalf("%s: %d runs and pages with the fast path, %d without", root, len(fast), len(slow))
		}
		for i := range fast {
			// Compare as JSON-ish text: NaN values compare unequal otherwise.
			if a, b := fmt.Sprintf("%#v", fast[i]), fmt.Sprintf("%#v", slow[i]); a != b {
				t.Fatalf("%s: item %d differs:\nfast %.500s\nslow %.500s", root, i, a, b)
			}
		}
	}
}
