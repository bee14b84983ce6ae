package wandbapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbapi"
)

// TestLogLinesPaging: every run's console log read in pages of 2 lines
// (and of the default size) arrives whole and in order, one request per
// page (a last page included, since the server says whether one more
// follows), with each line's number, time and level; a run without console
// output yields nothing, a run that does not exist is a permanent error
// naming it.
func TestLogLinesPaging(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	ctx := context.Background()
	old := wandbapi.LogLinesPageSize
	t.Cleanup(func() { wandbapi.LogLinesPageSize = old })
	total, empty := 0, 0
	for _, size := range []int{2, old} {
		wandbapi.LogLinesPageSize = size
		for _, p := range srv.Data().Projects {
			for _, r := range p.Runs {
				before := srv.LogLinePages.Load()
				var got []string
				pages := 0
				for page, err := range c.LogLines(ctx, "acme", p.Name, r.ID) {
					if err != nil {
						t.Fatalf("run %s: %v", r.ID, err)
					}
					if len(page) > size {
						t.Fatalf("run %s: page of %d lines, asked for %d", r.ID, len(page), size)
					}
					pages++
					for _, l := range page {
						got = append(got, fmt.Sprintf("%d %s %s %q", *l.Number, *l.Timestamp, *l.Level, l.Line))
					}
				}
				var want []string
				for i, l := range r.LogLines {
					level := ""
					if l.Stderr {
						level = "error"
					}
					want = append(want, fmt.Sprintf("%d %s %s %q", i, l.Time.UTC().Format("2006-01-02T15:04:05.000000"), level, l.Line))
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("run %s, pages of %d:\n%s\nwant\n%s", r.ID, size, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				requests := max(1, (len(want)+size-1)/size)
				if n := srv.LogLinePages.Load() - before; n != int64(requests) || pages != len(want)/size+min(1, len(want)%size) {
					t.Fatalf("run %s, %d lines in pages of %d: %d requests, %d pages yielded", r.ID, len(want), size, n, pages)
				}
				total += len(want)
				if len(want) == 0 {
					empty++
				}
			}
		}
	}
	if total < 8 || empty == 0 {
		t.Fatalf("fixtures served %d console lines, %d runs without: want runs with and without", total, empty)
	}
	for _, err := range c.LogLines(ctx, "acme", "runferry-fixtures", "gone0001") {
		if fault.KindOf(err) != fault.KindPermanent || !strings.Contains(err.Error(), "acme/runferry-fixtures/gone0001 not found") {
			t.Fatalf("missing run: %v", err)
		}
	}
}

// TestLogLinesLegacyRefused: the test server, like W&B's legacy resolver
// would misread it, refuses a forward read without useImprovedPagination,
// so a client that forgets the argument is seen.
func TestLogLinesLegacyRefused(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	var out map[string]any
	err := c.Query(context.Background(), `query($e: String!, $p: String!, $r: String!) { project(name: $p, entityName: $e) { run(name: $r) { logLines(first: 10) { edges { node { line } } } } } }`,
		map[string]any{"e": "acme", "p": "runferry-fixtures", "r": srv.Data().Projects[0].Runs[0].ID}, &out)
	if err == nil || !strings.Contains(err.Error(), "useImprovedPagination") {
		t.Fatalf("forward read without useImprovedPagination: %v", err)
	}
}
