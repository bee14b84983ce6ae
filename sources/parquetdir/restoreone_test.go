package parquetdir_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	sinkmem "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/parquetdir"
)

// readCounter is a reverse proxy in front of the S3 server that counts, by
// object key, the requests and the response body bytes that reach it.
type readCounter struct {
	mu    sync.Mutex
	bytes map[string]int64 // by key (the path after the bucket)
	gets  map[string]int
}

func (c *readCounter) total() (n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bytes {
		n += b
	}
	return n
}

type countingBody struct {
	io.ReadCloser
	c   *readCounter
	key string
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.mu.Lock()
	b.c.bytes[b.key] += int64(n)
	b.c.mu.Unlock()
	return n, err
}

// countingProxy starts the proxy in front of endpoint and returns its URL.
// The Host header is passed on as the client sent it, so S3 signatures
// stay valid.
func countingProxy(t *testing.T, endpoint string) (string, *readCounter) {
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &readCounter{bytes: map[string]int64{}, gets: map[string]int{}}
	p := httputil.NewSingleHostReverseProxy(target)
	p.ModifyResponse = func(resp *http.Response) error {
		key := resp.Request.URL.Path
		if _, rest, ok := strings.Cut(strings.TrimPrefix(key, "/"), "/"); ok {
			key = rest // path-style: /BUCKET/KEY
		} else {
			key = "(bucket) " + resp.Request.URL.RawQuery
		}
		c.mu.Lock()
		c.gets[key]++
		c.mu.Unlock()
		resp.Body = countingBody{resp.Body, c, key}
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL, c
}

// manyRuns returns n runs of 2,000 points and one 64 KiB file each.
func manyRuns(n int) *dataset.Dataset {
	base := dataset.Canonical()
	d := &dataset.Dataset{Experiments: base.Experiments[:1]}
	for i := range n {
		r := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("proj/run-%03d", i)},
			Experiment: base.Experiments[0].Origin, Name: fmt.Sprintf("run %d", i), Status: schema.StatusFinished,
			Start: base.Runs[0].Run.Start, End: base.Runs[0].Run.End}}
		for s := range 1000 {
			r.Metrics = append(r.Metrics,
				schema.Metric{Key: "loss", Step: int64(s), Time: int64(1e12 + s), Value: float64(i*1000+s) / 7},
				schema.Metric{Key: "acc", Step: int64(s), Time: int64(1e12 + s), Value: float64(i*1000-s) / 3})
		}
		body := []byte(strings.Repeat(fmt.Sprintf("weights of run %d\n", i), 64<<10/20))
		r.Files = append(r.Files, dataset.File{Path: "model.bin", Content: body})
		d.Runs = append(d.Runs, r)
	}
	return d
}

// TestS3RestoreOneRunReadsOnlyIt: restoring one run (--run) of an archive
// of 40 in a bucket reads, as counted by a proxy in front of the S3
// server, the manifest, the experiment's file and that run's objects, and
// nothing of the 39 others: under a twentieth of the archive's bytes.
// The run restored equals the one archived.
func TestS3RestoreOneRunReadsOnlyIt(t *testing.T) {
	s3 := testenv.SharedS3(t)
	bucket := s3.CreateBucket(t, "restoreone")
	want := manyRuns(40)
	writeArchive(t, s3.Location(bucket, "a"), want)
	proxy, counter := countingProxy(t, s3.Endpoint)
	loc := "s3://" + bucket + "/a?" + url.Values{"endpoint": {proxy}, "path-style": {"true"}}.Encode()

	pick := want.Runs[17]
	src, err := parquetdir.New(loc, 0)
	if err != nil {
		t.Fatal(err)
	}
	dst := sinkmem.New(sinks.Limits{})
	rep, err := transfer.Copy(context.Background(), src, dst, transfer.Options{Filter: transfer.Filter{RunIDs: []string{"run-017"}}})
	if err != nil || rep.Totals.Committed != 1 || rep.Totals.Failed != 0 {
		t.Fatalf("restore: %v %+v", err, rep.Totals)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	got := dst.Dataset()
	if diff := dataset.Diff(&dataset.Dataset{Experiments: want.Experiments, Runs: []*dataset.RunData{pick}}, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("restored run differs:\n%s", strings.Join(diff, "\n"))
	}

	// What was read: every key read belongs to the picked run, its
	// experiment or the archive's own records.
	st, err := archive.OpenStore(s3.Location(bucket, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var archiveBytes, runBytes int64
	for _, top := range append(archive.Tables, "blobs", archive.ManifestFile) {
		st.Walk(top, func(p string, size int64) error { archiveBytes += size; return nil })
	}
	r, err := archive.OpenReader(s3.Location(bucket, "a"), 0)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := r.Run(pick.Run.Origin.String())
	r.Close()
	mine := map[string]bool{}
	for _, f := range e.Files {
		mine[f.Path] = true
		runBytes += f.Bytes
	}
	for _, b := range e.Blobs {
		mine[path.Join("blobs/sha256", b.SHA256[:2], b.SHA256)] = true
		runBytes += b.Bytes
	}
	key := archive.EntityKey(pick.Run.Origin.String())
	counter.mu.Lock()
	for k, n := range counter.bytes {
		rel := strings.TrimPrefix(k, "a/")
		table, _, _ := strings.Cut(rel, "/")
		switch {
		case mine[rel], table == archive.TableExperiments, rel == archive.ManifestFile,
			strings.HasPrefix(k, "(bucket)"), strings.HasPrefix(rel, "journal/"):
		case strings.Contains(rel, "/"+key+"/"):
			t.Errorf("read %s (%d bytes): a file of the run that the manifest does not list", k, n)
		default:
			t.Errorf("read %s (%d bytes), which is not the restored run's", k, n)
		}
	}
	for p := range mine {
		if counter.bytes["a/"+p] == 0 {
			t.Errorf("%s (the run's) was not read", p)
		}
	}
	counter.mu.Unlock()
	read := counter.total()
	t.Logf("read %d bytes for a run of %d bytes in an archive of %d bytes", read, runBytes, archiveBytes)
	if read > archiveBytes/20 {
		t.Errorf("read %d bytes of an archive of %d to restore one run of %d", read, archiveBytes, runBytes)
	}
}
