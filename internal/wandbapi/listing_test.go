package wandbapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// TestExportPage: RunPages gives the runs the plain listing gives, with
// their page (one request, no parquetHistory); ExportPage asks for that
// page again in export form (one request) and gives the same runs, each
// with the parquet history exports and the files and artifact versions
// that ParquetHistory and Contents answer for it; a server that refuses
// the export form (here: one without parquetHistory) is asked it once per
// client, and ExportPage then gives no runs and no error.
func TestExportPage(t *testing.T) {
	srv := server(t)
	wandbtest.ExportFixtures(srv.Data())
	c := client(t, srv.URL, key)
	ctx := context.Background()
	const project = "runferry-fixtures"
	pages := func(c *wandbapi.Client) (*wandbapi.RunPage, []string) {
		t.Helper()
		var page *wandbapi.RunPage
		var names []string
		for pr, err := range c.RunPages(ctx, "acme", project, nil) {
			if err != nil {
				t.Fatal(err)
			}
			if page != nil && pr.Page != page {
				t.Fatalf("run %s on another page than the runs before it", pr.Name)
			}
			page = pr.Page
			names = append(names, pr.Name)
		}
		if page == nil || !reflect.DeepEqual(page.Names, names) {
			t.Fatalf("page %+v, runs %v", page, names)
		}
		return page, names
	}
	before, parquet := srv.Requests.Load(), srv.ParquetQueries.Load()
	page, _ := pages(c)
	if n, pq := srv.Requests.Load()-before, srv.ParquetQueries.Load()-parquet; n != 1 || pq != 0 {
		t.Errorf("listing: %d requests, %d parquetHistory answered; want 1, 0", n, pq)
	}
	before = srv.Requests.Load()
	listed, err := c.ExportPage(ctx, page)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Requests.Load() - before; n != 1 {
		t.Errorf("export page of %d runs: %d requests, want 1", len(listed), n)
	}
	var plain []wandbapi.Run
	for r, err := range c.Runs(ctx, "acme", project) {
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, r)
	}
	if len(listed) != len(plain) || len(plain) != 6 {
		t.Fatalf("%d runs listed for export, %d by the plain listing", len(listed), len(plain))
	}
	unsigned := func(urls []string) []string {
		var out []string
		for _, u := range urls {
			out = append(out, u[:strings.IndexByte(u, '?')])
		}
		return out
	}
	withExports, withFiles := 0, 0
	for i, lr := range listed {
		if !reflect.DeepEqual(lr.Run, plain[i]) {
			t.Errorf("run %d: %+v, plain listing %+v", i, lr.Run, plain[i])
		}
		urls, live, err := c.ParquetHistory(ctx, "acme", project, lr.Name)
		if err != nil {
			t.Fatal(err)
		}
		if lr.Exports == nil || fmt.Sprint(unsigned(lr.Exports.URLs), lr.Exports.LiveSteps) != fmt.Sprint(unsigned(urls), live) {
			t.Errorf("run %s: listed exports %+v, ParquetHistory %v %v", lr.Name, lr.Exports, urls, live)
		}
		if len(urls)+len(live) > 0 {
			withExports++
		}
		rc, err := c.Contents(ctx, "acme", project, lr.Name)
		if err != nil {
			t.Fatal(err)
		}
		if lr.Contents == nil || contentsText(*lr.Contents) != contentsText(rc) {
			t.Errorf("run %s: listed contents %+v, Contents %+v", lr.Name, lr.Contents, rc)
		}
		if len(rc.Files) > 0 {
			withFiles++
		}
	}
	if withExports < 3 || withFiles < 3 {
		t.Fatalf("fixtures: %d runs with exports, %d with files", withExports, withFiles)
	}

	// A server that does not know parquetHistory: the plain listing, and
	// the export listing asked only once per client.
	var refused atomic.Int64
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/graphql" {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if strings.Contains(string(b), "parquetHistory") {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"errors":[{"message":"Cannot query field \"parquetHistory\" on type \"Run\"."}]}`)
			return true
		}
		return false
	})
	old := client(t, srv.URL, key)
	oldPage, names := pages(old)
	if !reflect.DeepEqual(names, page.Names) {
		t.Fatalf("plain listing %v, was %v", names, page.Names)
	}
	for range 2 {
		got, err := old.ExportPage(ctx, oldPage)
		if err != nil || got != nil {
			t.Fatalf("export page refused: %+v, %v; want no runs, no error", got, err)
		}
	}
	if n := refused.Load(); n != 1 {
		t.Errorf("export page refused %d times, want once", n)
	}
}

// contentsText is c with signed URLs cut at their query.
func contentsText(c wandbapi.RunContents) string {
	var b strings.Builder
	cut := func(u string) string {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			return u[:i]
		}
		return u
	}
	for _, f := range c.Files {
		fmt.Fprintf(&b, "file %s %s %s %d %s %s %s\n", f.Name, cut(f.URL), cut(f.DirectURL), f.SizeBytes, f.Mimetype, f.UpdatedAt, f.MD5)
	}
	for _, as := range [][]wandbapi.Artifact{c.Logged, c.Used} {
		for _, a := range as {
			m := ""
			if a.CurrentManifest != nil {
				m = cut(a.CurrentManifest.File.DirectURL)
			}
			fmt.Fprintf(&b, "artifact %s %s %s %s %d %v %s\n", a.ID, a.Sequence.Name, a.Version(), a.Digest, a.Size, a.OwnAliases(), m)
		}
		b.WriteString("--\n")
	}
	return b.String()
}
