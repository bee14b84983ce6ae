package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

// TestBlobMoveStreamsLargeObjects: streamCopy, which Move falls back to
// when a server-side copy fails on an object larger than it takes (5 GiB
// on S3, which no test can upload here), copies a multipart-sized object
// whole; and a Move whose source is gone but whose target is there is a
// finished move.
func TestBlobMoveStreamsLargeObjects(t *testing.T) {
	s3 := testenv.SharedS3(t)
	st, err := OpenStore(s3.Location(s3.CreateBucket(t, "move"), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB: a multipart upload
	if err := st.WriteFile(".staging/big", body); err != nil {
		t.Fatal(err)
	}
	bs := st.(*blobStore)
	if err := bs.streamCopy(".staging/big", "blobs/big"); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove(".staging/big"); err != nil {
		t.Fatal(err)
	}
	got, err := st.ReadFile("blobs/big")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("moved object: %d bytes, %v; want %d bytes equal", len(got), err, len(body))
	}
	// Move itself: a missing source whose target exists is a finished move.
	if err := st.Move(".staging/big", "blobs/big"); err != nil {
		t.Fatalf("repeated move: %v", err)
	}
}

// TestBlobCreateExclusiveRefused: on every object store, creating an
// object that exists fails with fs.ErrExist and leaves the first body (on
// Azure, gocloud.dev's Write-and-Close path panicked here instead).
func TestBlobCreateExclusiveRefused(t *testing.T) {
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) {
			st, err := OpenStore(store.Start(t)(t, "a"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.CreateExclusive("lock", []byte("first")); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateExclusive("lock", []byte("second")); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("second create: %v, want fs.ErrExist", err)
			}
			if got, err := st.ReadFile("lock"); err != nil || string(got) != "first" {
				t.Fatalf("lock holds %q, %v; want first", got, err)
			}
		})
	}
}

// TestBlobStreamedObjects: an object larger than smallObject streams
// through Bucket.Upload on every object store: committed, it reads back
// whole; aborted, it leaves no object.
func TestBlobStreamedObjects(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 9<<16) // 9 MiB
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) {
			st, err := OpenStore(store.Start(t)(t, "a"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for _, commit := range []bool{true, false} {
				w, err := st.Create(fmt.Sprintf("big-%v", commit))
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(body); off += 1 << 20 {
					if _, err := w.Write(body[off:min(off+1<<20, len(body))]); err != nil {
						t.Fatal(err)
					}
				}
				if !commit {
					w.Abort()
					if _, err := st.Stat("big-false"); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("aborted object: %v, want fs.ErrNotExist", err)
					}
					continue
				}
				if err := w.Commit(); err != nil {
					t.Fatal(err)
				}
				if got, err := st.ReadFile("big-true"); err != nil || !bytes.Equal(got, body) {
					t.Fatalf("streamed object: %d bytes, %v; want %d bytes equal", len(got), err, len(body))
				}
			}
		})
	}
}

// TestBlobBodiesHashedFirst: in object storage an artifact body is hashed
// before it is uploaded, and uploaded straight to its content-addressed
// key only when no body of that content is there. Counting the uploads: a
// first write uploads each distinct body once (a small one and one past
// smallObject, which streams), never to staging; appending with the same
// files and writing another run holding them upload no body at all.
func TestBlobBodiesHashedFirst(t *testing.T) {
	s3 := testenv.SharedS3(t)
	loc := s3.Location(s3.CreateBucket(t, "hashfirst"), "a")
	small := []byte("a small body")
	large := bytes.Repeat([]byte("0123456789abcdef"), (smallObject+1<<20)/16)
	files := []struct {
		path string
		body []byte
	}{{"small.txt", small}, {"large.bin", large}, {"copy-of-small.txt", small}}
	exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "e"}
	write := func(id string, appendTo *RunEntry) (uploads []string, kept int64) {
		t.Helper()
		w, err := OpenWriter(loc)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		w.st.(*blobStore).onUpload = func(p string) {
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(p, blobsDir+"/") {
				uploads = append(uploads, p)
			}
		}
		if err := w.PutExperiment(exp); err != nil {
			t.Fatal(err)
		}
		run := schema.Run{Origin: schema.Ref{System: "memory", ID: id}, Experiment: exp.Origin, Status: schema.StatusFinished}
		rw := w.OpenRun(run)
		if appendTo != nil {
			if rw, err = w.AppendRun(run, *appendTo); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range files {
			if err := rw.WriteArtifact(schema.Artifact{Path: f.path, Size: int64(len(f.body))}, bytes.NewReader(f.body)); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.Commit(); err != nil {
			t.Fatal(err)
		}
		kept, _, _ = rw.FileDelta()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return uploads, kept
	}
	shaOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	got, _ := write("r1", nil)
	slices.Sort(got)
	want := []string{blobPath(shaOf(small)), blobPath(shaOf(large))}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("first write uploaded %q, want each distinct body once at its key: %q", got, want)
	}
	r, err := OpenReader(loc, 0)
	if err != nil {
		t.Fatal(err)
	}
	prev, ok := r.Run("memory:r1")
	r.Close()
	if !ok {
		t.Fatal("run r1 not committed")
	}
	if got, kept := write("r1", &prev); len(got) != 0 || kept != 3 {
		t.Errorf("append with the same files uploaded %q and kept %d files, want none uploaded and 3 kept", got, kept)
	}
	if got, _ := write("r2", nil); len(got) != 0 {
		t.Errorf("another run with the same files uploaded %q, want none", got)
	}
	st, err := OpenStore(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, f := range files {
		if data, err := st.ReadFile(blobPath(shaOf(f.body))); err != nil || !bytes.Equal(data, f.body) {
			t.Errorf("%s: body holds %d bytes, %v; want %d equal", f.path, len(data), err, len(f.body))
		}
	}
	if err := st.Walk(stagingDir, func(p string, _ int64) error { t.Errorf("left in staging: %s", p); return nil }); err != nil {
		t.Fatal(err)
	}
	if rep, err := Check(loc); err != nil || len(rep.Notes) > 0 {
		t.Errorf("check: %v %v", err, rep.Notes)
	}
}

// TestBlobRangedReads: an object opened and parsed as Parquet without
// being read whole fetches its footer and nothing else (counted by a proxy
// in front of the S3 server); one read whole is fetched once, and ReadAt
// after that is served from the copy kept as it was read.
func TestBlobRangedReads(t *testing.T) {
	s3 := testenv.SharedS3(t)
	bucket := s3.CreateBucket(t, "ranged")
	var fetched atomic.Int64
	target, _ := url.Parse(s3.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		resp.Body = countedBody{resp.Body, &fetched}
		return nil
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	st, err := OpenStore("s3://" + bucket + "/a?" + url.Values{"endpoint": {srv.URL}, "path-style": {"true"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows := make([]MetricRow, 300_000)
	for i := range rows {
		rows[i] = MetricRow{Run: "memory:r", Key: fmt.Sprintf("k%d", i%7), Step: int64(i), Time: int64(1e12) + int64(i), Value: float64(i*7919%10007) / 3}
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if err := st.WriteFile("metrics/x.parquet", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	size := int64(buf.Len())

	fetched.Store(0)
	f, err := st.Open("metrics/x.parquet")
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, f.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRows() != int64(len(rows)) {
		t.Errorf("footer says %d rows, want %d", pf.NumRows(), len(rows))
	}
	f.Close()
	if got := fetched.Load(); got > 64<<10 || got == 0 {
		t.Errorf("opening a %d-byte Parquet object fetched %d bytes, want its footer only", size, got)
	}

	fetched.Store(0)
	f, err = st.Open("metrics/x.parquet")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(data, buf.Bytes()) {
		t.Fatalf("read whole: %d bytes, %v", len(data), err)
	}
	tail := make([]byte, 100)
	if _, err := f.ReadAt(tail, size-100); err != nil || !bytes.Equal(tail, buf.Bytes()[size-100:]) {
		t.Errorf("ReadAt after the read: %v", err)
	}
	f.Close()
	if got := fetched.Load(); got != size {
		t.Errorf("reading a %d-byte object whole, then its end again, fetched %d bytes", size, got)
	}
}

type countedBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
