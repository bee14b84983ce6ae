package wandbcloud_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// TestSurvivesFaults: with one request in two (seeded) answered by a
// fault (every second query from a seeded start, every second export
// download), whole projects read
// exactly as without: 429 with Retry-After, 500, 502, 503 and connections
// reset before any answer. Every kind is injected.
func TestSurvivesFaults(t *testing.T) {
	old := wandbcloud.HistoryWindow
	wandbcloud.HistoryWindow = 3
	t.Cleanup(func() { wandbcloud.HistoryWindow = old })
	srv := server(t, wandbtest.ExportFixtures)
	w := want(t, srv.Data().SyncedAt)
	rng := testenv.Rand(t)
	var mu sync.Mutex
	injected := map[string]int{}
	kinds := []string{"429", "500", "502", "503", "reset"}
	queries, downloads, offset := 0, 0, rng.IntN(2)
	srv.Before(func(rw http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		// Every second query (from a seeded offset) and every second
		// download; the kinds take turns in each.
		download := strings.HasPrefix(r.URL.Path, "/exports/")
		var kind string
		if download {
			downloads++
			if downloads%2 != 0 {
				return false
			}
			kind = kinds[(downloads/2)%len(kinds)] + " download"
		} else {
			queries++
			if (queries+offset)%2 != 0 {
				return false
			}
			kind = kinds[((queries+offset)/2)%len(kinds)]
		}
		injected[kind]++
		switch {
		case strings.HasPrefix(kind, "429"):
			rw.Header().Set("Retry-After", "0")
			rw.WriteHeader(http.StatusTooManyRequests)
		case strings.HasPrefix(kind, "reset"):
			conn, _, err := rw.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			code := map[string]int{"500": 500, "502": 502, "503": 503}[kind[:3]]
			rw.WriteHeader(code)
			rw.Write([]byte("<html>upstream error</html>"))
		}
		return true
	})
	src, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", APIKey: key, RetryWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(w, got, dataset.DiffOptions{}); diff != nil {
		t.Fatal(strings.Join(diff, "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	var inDownloads int
	for k, n := range injected {
		if strings.HasSuffix(k, " download") {
			inDownloads += n
		}
	}
	for _, k := range kinds {
		if injected[k] == 0 {
			t.Errorf("no %s injected into queries (%v)", k, injected)
		}
	}
	if inDownloads < 2 {
		t.Errorf("%d faults injected into downloads (%v)", inDownloads, injected)
	}
	t.Logf("faults injected: %v", injected)
}

// TestRunDeletedMidExport: a run deleted after it was listed is an error
// naming it (permanent: a retry finds it gone too), whether its history is
// read from the exports or the paged query.
func TestRunDeletedMidExport(t *testing.T) {
	srv := server(t, wandbtest.ExportFixtures)
	src := open(t, srv.URL, "")
	for _, id := range []string{"fxa00001", "fxe00005"} { // exports, paged
		srv.Delete(id)
		ref := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/runferry-fixtures/" + id}
		for _, err := range src.Metrics(context.Background(), ref) {
			if err == nil || fault.KindOf(err) != fault.KindPermanent || !strings.Contains(err.Error(), "run fixture-entity/runferry-fixtures/"+id+" not found") {
				t.Fatalf("%s deleted: %v", id, err)
			}
		}
	}
}
