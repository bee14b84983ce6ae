package wandbcloud

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/wandbdir"
)

// TestRowConversionMatchesWandbfile requires the conversion of the history
// rows the API serves for the fixtures (every row of every run, as text) to
// give exactly what wandbfile.ConvertValues gives for the same values: the
// same metric points and the same rich values, with the same step and time.
func TestRowConversionMatchesWandbfile(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	src, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures"), Entity: "e", CrashedAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := wandbtest.Load(context.Background(), src, "e", "tester")
	if err != nil {
		t.Fatal(err)
	}
	srv := wandbtest.New(d, key)
	defer srv.Close()
	api, err := wandbapi.New(wandbapi.Config{BaseURL: srv.URL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	var rows, points, rich int
	for _, p := range d.Projects {
		for _, r := range p.Runs {
			texts, err := api.HistoryPage(context.Background(), "e", p.Name, r.ID, 0, 1<<40, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range texts {
				rows++
				gotPoints, gotRich, err := convertRowText(text)
				if err != nil {
					t.Fatalf("%s: %v", r.ID, err)
				}
				v, err := wandbfile.ParseValueJSON(text)
				if err != nil {
					t.Fatal(err)
				}
				var items []wandbfile.Value
				for k, x := range v.(map[string]any) {
					items = append(items, wandbfile.Value{Path: []string{k}, Value: x})
				}
				rv, ms := wandbfile.ConvertValues(items, nil)
				for i := range ms {
					ms[i].Step, ms[i].Time = rv.Step, rv.Time
				}
				for i := range rv.Rich {
					rv.Rich[i].Step, rv.Rich[i].Time = rv.Step, rv.Time
				}
				schema.SortMetrics(gotPoints)
				points += len(ms)
				rich += len(rv.Rich)
				if len(ms) == 0 {
					ms = nil
				}
				if fmt.Sprintf("%+v", gotPoints) != fmt.Sprintf("%+v", ms) { // NaN is not equal to itself
					t.Errorf("%s row %s: points\n got  %+v\n want %+v", r.ID, text, gotPoints, ms)
				}
				if !reflect.DeepEqual(gotRich, rv.Rich) {
					t.Errorf("%s row %s: rich values\n got  %+v\n want %+v", r.ID, text, gotRich, rv.Rich)
				}
			}
		}
	}
	if rows < 20 || points < 40 || rich < 4 {
		t.Fatalf("fixtures served %d rows, %d points, %d rich values", rows, points, rich)
	}
}
