package wandbapi_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
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

// TestDownloadSpooled: a body of at most inMemory bytes is held in memory
// (no file made in the folder), a larger one in a temporary file there
// (removed by Close); both read back as the bytes Download writes. A
// folder that cannot hold the file is a fatal error, with nothing left.
func TestDownloadSpooled(t *testing.T) {
	srv := server(t)
	wandbtest.ExportFixtures(srv.Data())
	c := client(t, srv.URL, key)
	ctx := context.Background()
	urls, _, err := c.ParquetHistory(ctx, "acme", "runferry-fixtures", "fxa00001")
	if err != nil || len(urls) == 0 {
		t.Fatalf("parquetHistory: %v %v", urls, err)
	}
	var want bytes.Buffer
	if _, err := c.Download(ctx, urls[0], &want, -1); err != nil {
		t.Fatal(err)
	}
	size := int64(want.Len())
	if size < 100 {
		t.Fatalf("an export of %d bytes", size)
	}
	for _, tc := range []struct {
		inMemory int64
		inFile   bool
	}{{size, false}, {size * 4, false}, {size - 1, true}, {0, true}} {
		dir := t.TempDir()
		sp, err := c.DownloadSpooled(ctx, urls[0], dir, tc.inMemory)
		if err != nil {
			t.Fatal(err)
		}
		left, _ := os.ReadDir(dir)
		if sp.InFile() != tc.inFile || len(left) != map[bool]int{true: 1}[tc.inFile] {
			t.Errorf("in memory up to %d bytes: a body of %d held in a file %v (files in the folder: %d), want %v", tc.inMemory, size, sp.InFile(), len(left), tc.inFile)
		}
		got, err := io.ReadAll(io.NewSectionReader(sp, 0, sp.Size))
		if err != nil || sp.Size != size || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("in memory up to %d bytes: read back %d bytes (size %d, %v), want the %d downloaded", tc.inMemory, len(got), sp.Size, err, size)
		}
		if err := sp.Close(); err != nil {
			t.Error(err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("in memory up to %d bytes: left after Close: %v", tc.inMemory, left)
		}
	}
	_, err = c.DownloadSpooled(ctx, urls[0], filepath.Join(t.TempDir(), "missing"), 10)
	if err == nil || fault.KindOf(err) != fault.KindFatal {
		t.Errorf("a folder that does not exist: %v (kind %v), want a fatal error", err, fault.KindOf(err))
	}
}
