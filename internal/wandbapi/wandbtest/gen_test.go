package wandbtest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// genProject is a project of runs in pairs: "gNN" with a Generated
// history and "hNN" holding the same rows in History, with the same
// exports: pair 0 in two parquet files and a live tail of three rows,
// pair 1 in one file, pair 2 without exports (the paged scan).
func genProject(rows int) *wandbtest.Project {
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &wandbtest.Project{Name: "gen", CreatedAt: created}
	exports := []*wandbtest.Export{{Files: 2, Live: 3}, {Files: 1}, nil}
	for i, ex := range exports {
		g := &wandbtest.Generated{Rows: rows, Keys: []string{"loss", "acc", "z"},
			Time:  func(r int) float64 { return 1.7e9 + float64(i*1000) + float64(r)/8 },
			Value: func(r, k int) float64 { return math.Sin(float64(r*3+k+i)) * float64(k+1) }}
		held := &wandbtest.Run{ID: fmt.Sprintf("h%02d", i), State: "finished", User: "tester",
			CreatedAt: created.Add(time.Duration(2*i) * time.Minute), HeartbeatAt: created.Add(time.Hour)}
		gen := *held
		gen.ID = fmt.Sprintf("g%02d", i)
		gen.CreatedAt = gen.CreatedAt.Add(time.Minute)
		gen.Generated = g
		for r := range rows {
			row := map[string]any{"_step": float64(r), "_timestamp": g.Time(r)}
			for k, name := range g.Keys {
				row[name] = g.Value(r, k)
			}
			held.History = append(held.History, row)
		}
		if ex != nil {
			e1, e2 := *ex, *ex
			held.Export, gen.Export = &e1, &e2
		}
		p.Runs = append(p.Runs, held, &gen)
	}
	return p
}

// TestGeneratedServesAsHistory: a run whose history is Generated answers
// every history query (historyLineCount, historyKeys, paged history,
// sampledHistory, parquetHistory's live tail) and its parquet export files
// exactly as the run holding the same rows in History does (the exports
// compared value by value: the generated ones are cut in row groups).
func TestGeneratedServesAsHistory(t *testing.T) {
	srv := wandbtest.New(&wandbtest.Data{Entity: "acme", Username: "tester", Projects: []*wandbtest.Project{genProject(300)}}, Key)
	defer srv.Close()
	q := `query Q($id: String!) { project(name: "gen", entityName: "acme") { run(name: $id) {
  historyLineCount historyKeys
  a: history(samples: 1000, minStep: 0, maxStep: 120) b: history(samples: 7, minStep: 100)
  sampledHistory(specs: ["{\"keys\": [\"_step\", \"acc\"], \"samples\": 10, \"minStep\": 5, \"maxStep\": 250}"])
  parquetHistory(liveKeys: ["_step", "loss"]) { parquetUrls liveData } } } }`
	answer := func(id string) (string, []string) {
		body, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"id": id}})
		code, out := post(t, srv.URL, string(body))
		if code != 200 || strings.Contains(out, `"errors"`) {
			t.Fatalf("%s: %d %s", id, code, out)
		}
		var got struct {
			Data struct {
				Project struct {
					Run struct {
						ParquetHistory struct {
							URLs []string `json:"parquetUrls"`
						} `json:"parquetHistory"`
					} `json:"run"`
				} `json:"project"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		urls := got.Data.Project.Run.ParquetHistory.URLs
		return signedURL.ReplaceAllString(out, `"URL"`), urls
	}
	for i := range 3 {
		hid, gid := fmt.Sprintf("h%02d", i), fmt.Sprintf("g%02d", i)
		held, hurls := answer(hid)
		gen, gurls := answer(gid)
		if held != gen {
			at := 0
			for at < len(held) && at < len(gen) && held[at] == gen[at] {
				at++
			}
			t.Errorf("pair %d: generated run answers, from byte %d,\n%.300s\nwant (held)\n%.300s", i, at, gen[at:], held[at:])
		}
		if len(hurls) != len(gurls) {
			t.Fatalf("pair %d: %d export files, want %d", i, len(gurls), len(hurls))
		}
		for f := range hurls {
			want, got := exportValues(t, hurls[f]), exportValues(t, gurls[f])
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Errorf("pair %d: export %d: generated %d values, held %d, or they differ", i, f, len(got), len(want))
			}
		}
	}
}

var signedURL = regexp.MustCompile(`"http://[^"]*"`)

// exportValues downloads an export file and returns its rows' values as
// "column=value" strings, row by row.
func exportValues(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET export: %d %s", resp.StatusCode, b)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	cols := f.Schema().Columns()
	r := parquet.NewReader(f)
	defer r.Close()
	var out []string
	buf := make([]parquet.Row, 16)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			for _, v := range row {
				out = append(out, fmt.Sprintf("%s=%v", cols[v.Column()][0], v))
			}
			out = append(out, "|")
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestRealSDKReadsGenerated: the real wandb SDK reads a Generated run's
// full history with scan_history (through its parquet exports and live
// tail, and through the paged query) as it reads the run holding the same
// rows, and the rows are the generator's.
func TestRealSDKReadsGenerated(t *testing.T) {
	const rows = 40
	p := genProject(rows)
	srv := wandbtest.New(&wandbtest.Data{Entity: "gen", Username: "tester", Projects: []*wandbtest.Project{p}}, Key)
	defer srv.Close()
	out := sdkRead(t, srv, "gen")
	var got map[string]map[string]map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("sdk output: %v\n%s", err, out)
	}
	runs := got["gen"]
	if len(got) != 1 || len(runs) != 6 {
		t.Fatalf("sdk read %d projects, %d runs; want 1 and 6", len(got), len(runs))
	}
	for i := range 3 {
		g := p.Runs[2*i+1].Generated
		held, gen := runs[fmt.Sprintf("h%02d", i)], runs[fmt.Sprintf("g%02d", i)]
		if held == nil || gen == nil {
			t.Fatalf("pair %d: sdk read %v", i, keys(runs))
		}
		delete(held, "name")
		delete(gen, "name")
		if !reflect.DeepEqual(gen, held) {
			t.Errorf("pair %d: sdk reads the generated run as\n%v\nand the held one as\n%v", i, gen, held)
		}
		// scan_history gives the last exported row again before the live
		// tail (the SDK's doing: it does so for the held run too); the
		// repeat must be the same row.
		var hist []any
		for _, x := range gen["history"].([]any) {
			if n := len(hist); n > 0 && reflect.DeepEqual(hist[n-1], x) {
				continue
			}
			hist = append(hist, x)
		}
		if len(hist) != rows {
			t.Fatalf("pair %d: scan_history gave %d rows, want %d", i, len(hist), rows)
		}
		for r, x := range hist {
			row, _ := x.(map[string]any)
			if row["_step"] != float64(r) || row["_timestamp"] != g.Time(r) {
				t.Fatalf("pair %d: row %d: %v", i, r, row)
			}
			for k, name := range g.Keys {
				if row[name] != g.Value(r, k) {
					t.Fatalf("pair %d: row %d: %s = %v, want %v", i, r, name, row[name], g.Value(r, k))
				}
			}
		}
	}
}

// TestGeneratedEventsServeAsEvents: a run whose system-metrics rows are
// EventsGenerated answers eventsLineCount and events (whole and thinned
// to a few samples) exactly as the run holding the same rows in Events.
func TestGeneratedEventsServeAsEvents(t *testing.T) {
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	row := func(i int) map[string]any {
		return map[string]any{"system.cpu": float64(i%7) / 3, "system.proc.memory.rssMB": 100 + float64(i),
			"_timestamp": 1.7e9 + 15*float64(i), "_runtime": 15 * float64(i), "_wandb": true}
	}
	p := &wandbtest.Project{Name: "ev", CreatedAt: created}
	for i, rows := range []int{0, 1, 50} {
		held := &wandbtest.Run{ID: fmt.Sprintf("h%02d", i), State: "finished", User: "tester", CreatedAt: created, HeartbeatAt: created}
		gen := *held
		gen.ID = fmt.Sprintf("g%02d", i)
		gen.EventsGenerated = &wandbtest.GeneratedEvents{Rows: rows, Row: row}
		for r := range rows {
			held.Events = append(held.Events, row(r))
		}
		p.Runs = append(p.Runs, held, &gen)
	}
	srv := wandbtest.New(&wandbtest.Data{Entity: "acme", Username: "tester", Projects: []*wandbtest.Project{p}}, Key)
	defer srv.Close()
	q := `query Q($id: String!) { project(name: "ev", entityName: "acme") { run(name: $id) {
  eventsLineCount a: events(samples: 100000) b: events(samples: 7) c: events(samples: 1) d: events } } }`
	answer := func(id string) string {
		body, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"id": id}})
		code, out := post(t, srv.URL, string(body))
		if code != 200 || strings.Contains(out, `"errors"`) {
			t.Fatalf("%s: %d %s", id, code, out)
		}
		return out
	}
	for i, rows := range []int{0, 1, 50} {
		held, gen := answer(fmt.Sprintf("h%02d", i)), answer(fmt.Sprintf("g%02d", i))
		if held != gen {
			t.Errorf("%d rows: generated events answer\n%.400s\nwant (held)\n%.400s", rows, gen, held)
		}
		if want := fmt.Sprintf(`"eventsLineCount":%d`, rows); !strings.Contains(held, want) {
			t.Errorf("%d rows: answer lacks %s: %.300s", rows, want, held)
		}
	}
}
