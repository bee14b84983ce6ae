package wandbapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// heldWriter blocks its first Write until release is closed, so that a
// download holds its slot; started is closed at that first Write.
type heldWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *heldWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	<-w.release
	return len(p), nil
}

// TestDownloadsHaveTheirOwnSlots: MaxDownloads downloads from signed URLs
// held open at once (more than the API's adaptive in-flight limit, 8 at
// its start) do not hold the API back (a query answers meanwhile), and a
// download beyond MaxDownloads waits until one of them ends. Before,
// downloads took the API's in-flight slots: the 9th download, and every
// query, waited for one of the first 8 to end.
func TestDownloadsHaveTheirOwnSlots(t *testing.T) {
	srv := server(t)
	wandbtest.ExportFixtures(srv.Data())
	c := client(t, srv.URL, key)
	urls, _, err := c.ParquetHistory(context.Background(), "acme", "runferry-fixtures", "fxa00001")
	if err != nil || len(urls) == 0 {
		t.Fatalf("parquetHistory: %v %v", urls, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	release := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(release); wg.Wait() }()
	download := func() *heldWriter {
		w := &heldWriter{started: make(chan struct{}), release: release}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Download(ctx, urls[0], w, -1); err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}()
		return w
	}
	for i := range wandbapi.MaxDownloads {
		w := download()
		select {
		case <-w.started:
		case <-ctx.Done():
			t.Fatalf("download %d of %d at once did not start (%d in flight)", i+1, wandbapi.MaxDownloads, c.DownloadsInFlight())
		}
	}
	if _, err := c.Viewer(ctx); err != nil {
		t.Fatalf("a query while %d downloads are in flight: %v", wandbapi.MaxDownloads, err)
	}
	last := download()
	select {
	case <-last.started:
		t.Fatalf("download %d started while %d were in flight", wandbapi.MaxDownloads+1, wandbapi.MaxDownloads)
	case <-time.After(300 * time.Millisecond):
	}
	if n := c.DownloadsInFlight(); n != wandbapi.MaxDownloads {
		t.Errorf("%d downloads in flight, want %d", n, wandbapi.MaxDownloads)
	}
}
