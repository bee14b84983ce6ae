package wandbcloud_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// readFiles opens and reads every file of run, returning path -> content
// or the error met.
func readFiles(t *testing.T, src *wandbcloud.Source, run string) (map[string]string, error) {
	t.Helper()
	out := map[string]string{}
	for a, err := range src.Artifacts(context.Background(), schema.Ref{System: wandbcloud.System, ID: "fixture-entity/runferry-fixtures/" + run}) {
		if err != nil {
			return nil, err
		}
		rc, err := a.Open(context.Background())
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out[a.Path] = string(b)
	}
	return out, nil
}

// TestRunFiles: captured code comes only with ?code=true; the files and
// artifact versions of a run are listed in one request; a file whose
// bytes do not match the listing's MD5 (or size) is an error naming it;
// an expired signed URL is asked for again.
func TestRunFiles(t *testing.T) {
	srv := server(t, func(d *wandbtest.Data) {
		r := d.Projects[0].Runs[1]
		r.Files = append(r.Files, wandbtest.File{Name: "code/train.py", Content: []byte("print('hi')\n"), Mimetype: "text/x-python"})
	})
	id := "fxb00002"
	plain, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	withCode, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", APIKey: key, Code: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := readFiles(t, plain, id)
	if err != nil || len(got) < 2 || got["code/train.py"] != "" || got["output.log"] == "" {
		t.Fatalf("files without code: %v %v", keys(got), err)
	}
	before := srv.Requests.Load()
	got, err = readFiles(t, withCode, id)
	if err != nil || got["code/train.py"] != "print('hi')\n" {
		t.Fatalf("files with code: %v %v", keys(got), err)
	}
	// A run without artifacts: one request lists its files and its
	// (no) artifact versions.
	if n := srv.Requests.Load() - before; n != 1 {
		t.Errorf("listing the files of a run without artifacts took %d requests, want 1", n)
	}

	// Storage serves other bytes (same length) for output.log.
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/storage/") && strings.HasSuffix(r.URL.Path, "/output.log") {
			rec := &swap{ResponseWriter: w}
			srv.Before(nil)
			srv.Config.Handler.ServeHTTP(rec, r)
			return true
		}
		return false
	})
	_, err = readFiles(t, plain, id)
	if err == nil || !strings.Contains(err.Error(), "fxb00002: file output.log: MD5") {
		t.Fatalf("corrupted file: %v", err)
	}

	// The first directUrls handed out have expired.
	var listed atomic.Int64
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/graphql" {
			if listed.Add(1) == 1 {
				srv.SetURLTTL(-time.Second)
			} else {
				srv.SetURLTTL(0)
			}
		}
		return false
	})
	got, err = readFiles(t, plain, id)
	if err != nil || got["output.log"] == "" || listed.Load() < 2 {
		t.Fatalf("expired URLs: %v, %d listings, %v", keys(got), listed.Load(), err)
	}
}

// swap flips the first byte of what it writes.
type swap struct {
	http.ResponseWriter
	done bool
}

func (s *swap) Write(b []byte) (int, error) {
	if !s.done && len(b) > 0 {
		s.done = true
		c := append([]byte(nil), b...)
		c[0] ^= 0xff
		return s.ResponseWriter.Write(c)
	}
	return s.ResponseWriter.Write(b)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
