package wandbcloud_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// TestLogs: a run's console log read in pages of 2 lines arrives whole
// and in order, one schema page per API page: stderr for level "error",
// the server's time in milliseconds, a labelled writer's line as
// "[label] text"; a timestamp that is not a time is a permanent error
// naming the run and the line, and an old server's refusal of
// useImprovedPagination says which server version reading from the start
// needs.
func TestLogs(t *testing.T) {
	old := wandbapi.LogLinesPageSize
	wandbapi.LogLinesPageSize = 2
	t.Cleanup(func() { wandbapi.LogLinesPageSize = old })
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	srv := server(t, func(d *wandbtest.Data) {
		for _, r := range d.Projects[0].Runs {
			if r.ID == "fxa00001" {
				r.LogLines[1].Label, r.LogLines[1].Time = "rank1", at
			}
		}
	})
	var held []wandbtest.LogLine
	for _, r := range srv.Data().Projects[0].Runs {
		if r.ID == "fxa00001" {
			held = r.LogLines
		}
	}
	if len(held) < 5 {
		t.Fatalf("fxa00001 holds %d console lines", len(held))
	}
	var want []schema.LogLine
	for _, l := range held {
		w := schema.LogLine{Time: l.Time.UnixMilli(), Stream: schema.Stdout, Line: l.Line}
		if l.Stderr {
			w.Stream = schema.Stderr
		}
		if l.Label != "" {
			w.Line = "[" + l.Label + "] " + l.Line
		}
		want = append(want, w)
	}
	if want[1].Time != at.UnixMilli() || !strings.HasPrefix(want[1].Line, "[rank1] ") {
		t.Fatalf("line 1: %+v", want[1])
	}
	src := open(t, srv.URL, "").(sources.LogReader)
	ref := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/runferry-fixtures/fxa00001"}
	var got []schema.LogLine
	pages := 0
	for page, err := range src.Logs(context.Background(), ref) {
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 || len(page) > 2 {
			t.Fatalf("a page of %d lines", len(page))
		}
		pages++
		got = append(got, page...)
	}
	if show := func(l []schema.LogLine) string {
		var b strings.Builder
		for _, x := range l {
			b.WriteString(x.Stream + " " + time.UnixMilli(x.Time).UTC().Format(time.RFC3339Nano) + " " + x.Line + "\n")
		}
		return b.String()
	}; show(got) != show(want) || pages != (len(want)+1)/2 {
		t.Fatalf("%d pages:\n%s\nwant\n%s", pages, show(got), show(want))
	}

	// Answers of the server replaced for the logLines query.
	answer := func(body string) {
		srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			if !bytes.Contains(b, []byte("RunConsoleLogPage")) {
				return false
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
			return true
		})
	}
	answer(`{"data":{"project":{"run":{"logLineCount":1,"logLines":{"edges":[{"node":{"number":0,"timestamp":"yesterday","level":"","label":"","line":"x"}}],"pageInfo":{"endCursor":"1","hasNextPage":false}}}}}}`)
	for _, err := range open(t, srv.URL, "").(sources.LogReader).Logs(context.Background(), ref) {
		if fault.KindOf(err) != fault.KindPermanent || !strings.Contains(err.Error(), "fxa00001 console line 0") || !strings.Contains(err.Error(), `"yesterday"`) {
			t.Fatalf("bad timestamp: %v", err)
		}
	}
	answer(`{"errors":[{"message":"Unknown argument \"useImprovedPagination\" on field \"logLines\" of type \"Run\"."}],"data":null}`)
	for _, err := range open(t, srv.URL, "").(sources.LogReader).Logs(context.Background(), ref) {
		if err == nil || !strings.Contains(err.Error(), "needs W&B server 0.77 or newer") || !strings.Contains(err.Error(), "fxa00001") {
			t.Fatalf("old server: %v", err)
		}
	}
}
