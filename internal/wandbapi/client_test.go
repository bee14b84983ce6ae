package wandbapi_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/sources/wandbdir"
)

const key = "0123456789abcdef0123456789abcdef01234567"

func server(t *testing.T) *wandbtest.Server {
	t.Helper()
	src, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures"), Entity: "acme", CrashedAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := wandbtest.Load(context.Background(), src, "acme", "tester")
	if err != nil {
		t.Fatal(err)
	}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	return srv
}

func client(t *testing.T, url, k string) *wandbapi.Client {
	t.Helper()
	c, err := wandbapi.New(wandbapi.Config{BaseURL: url, APIKey: k, RetryMax: 3, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestListing: the viewer, the entity's projects and a project's runs,
// with the fields runferry asks for.
func TestListing(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	ctx := context.Background()
	v, err := c.Viewer(ctx)
	if err != nil || v.Entity != "acme" || v.Username != "tester" {
		t.Fatalf("viewer: %+v %v", v, err)
	}
	var projects []string
	for p, err := range c.Projects(ctx, "acme") {
		if err != nil {
			t.Fatal(err)
		}
		projects = append(projects, p.Name)
	}
	if strings.Join(projects, ",") != "runferry-fixtures" {
		t.Fatalf("projects %v", projects)
	}
	var ids []string
	for r, err := range c.Runs(ctx, "acme", "runferry-fixtures") {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Name)
		if r.Name == "fxa00001" {
			last, ok, err := r.LastStep()
			if err != nil || !ok || last != 15 {
				t.Errorf("fxa00001 last step %d %v %v, want 15", last, ok, err)
			}
			cfg, err := wandbapi.UnwrapConfig(r.Config)
			if err != nil || string(cfg["epochs"]) != "12" {
				t.Errorf("config %v %v", cfg, err)
			}
		}
	}
	if strings.Join(ids, ",") != "fxa00001,fxb00002,fxc00003,fxd00004,fxe00005,fxf00006" {
		t.Fatalf("runs %v", ids)
	}
	rows, err := c.HistoryPage(ctx, "acme", "runferry-fixtures", "fxa00001", 3, 6, 3)
	if err != nil || len(rows) != 1 || !strings.Contains(rows[0], `"_step":5`) || !strings.Contains(rows[0], `"loss":NaN`) {
		t.Fatalf("history page [3,6): %q %v", rows, err)
	}
	rows, err = c.HistoryPage(ctx, "acme", "runferry-fixtures", "fxa00001", 12, 15, 3)
	if err != nil || len(rows) != 0 {
		t.Fatalf("history page [12,15): %q %v", rows, err)
	}
}

// TestWrongKey: a refused key is a fatal one-line error that does not show
// the key.
func TestWrongKey(t *testing.T) {
	srv := server(t)
	bad := "ffffffffffffffffffffffffffffffffffffffff"
	_, err := client(t, srv.URL, bad).Viewer(context.Background())
	if err == nil || fault.KindOf(err) != fault.KindFatal {
		t.Fatalf("got %v, want a fatal error", err)
	}
	msg := err.Error()
	if strings.Contains(msg, bad) || strings.Contains(msg, "\n") || !strings.Contains(msg, "refused the API key") {
		t.Fatalf("error %q", msg)
	}
	if srv.Requests.Load() != 0 {
		t.Fatalf("%d requests answered with a wrong key", srv.Requests.Load())
	}
}

// TestHTMLAnswer: a proxy's HTML page is a fatal one-line error naming
// the status, the content type and the start of the page.
func TestHTMLAnswer(t *testing.T) {
	srv := server(t)
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n<body>" + strings.Repeat("x", 5000) + "</body></html>"))
		return true
	})
	_, err := client(t, srv.URL, key).Viewer(context.Background())
	if err == nil || fault.KindOf(err) != fault.KindFatal {
		t.Fatalf("got %v, want fatal", err)
	}
	msg := err.Error()
	for _, want := range []string{"200", "text/html", "<!DOCTYPE html> <html><head><title>Sign in"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") || len(msg) > 400 {
		t.Errorf("error is not one short line: %q", msg)
	}
}

// TestRetryAfter: 429s are retried after the Retry-After the server asks.
func TestRetryAfter(t *testing.T) {
	srv := server(t)
	var n atomic.Int64
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if n.Add(1) <= 2 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	start := time.Now()
	v, err := client(t, srv.URL, key).Viewer(context.Background())
	if err != nil || v.Entity != "acme" {
		t.Fatalf("viewer %v %v", v, err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("answered after %v: Retry-After (2 x 1s) not honoured", d)
	}
	if n.Load() != 3 {
		t.Fatalf("%d attempts, want 3", n.Load())
	}
}

// TestMissing: an entity or project that does not exist is named.
func TestMissing(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	ctx := context.Background()
	_, err := c.Project(ctx, "acme", "nope")
	if err == nil || !strings.Contains(err.Error(), "project acme/nope not found") {
		t.Fatalf("got %v", err)
	}
	for _, err := range c.Runs(ctx, "nobody", "runferry-fixtures") {
		if err == nil || !strings.Contains(err.Error(), "project nobody/runferry-fixtures not found") {
			t.Fatalf("got %v", err)
		}
	}
	_, err = c.Run(ctx, "acme", "runferry-fixtures", "zzz")
	if err == nil || !strings.Contains(err.Error(), "run acme/runferry-fixtures/zzz not found") {
		t.Fatalf("got %v", err)
	}
}

// TestKeyFromNetrc: without WANDB_API_KEY the key is the password of
// ~/.netrc's entry for the location's host.
func TestKeyFromNetrc(t *testing.T) {
	srv := server(t)
	dir := t.TempDir()
	netrc := filepath.Join(dir, ".netrc")
	os.WriteFile(netrc, []byte("machine api.wandb.ai\n  login user\n  password wrongwrong\nmachine 127.0.0.1\n  login user\n  password "+key+"\n"), 0o600)
	t.Setenv("WANDB_API_KEY", "")
	t.Setenv("NETRC", netrc)
	if got := wandbapi.Key("127.0.0.1"); got != key {
		t.Fatalf("key for 127.0.0.1 = %q", got)
	}
	if got := wandbapi.Key("api.wandb.ai"); got != "wrongwrong" {
		t.Fatalf("key for api.wandb.ai = %q", got)
	}
	if _, err := client(t, srv.URL, "").Viewer(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NETRC", filepath.Join(dir, "none"))
	if _, err := wandbapi.New(wandbapi.Config{BaseURL: srv.URL}); err == nil || fault.KindOf(err) != fault.KindFatal {
		t.Fatalf("no key: got %v", err)
	}
}

// TestUnreachableFailsFast: a host where nothing listens and that never
// answered fails within the first-contact budget, as a fatal one-line
// error naming the address.
func TestUnreachableFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := wandbapi.New(wandbapi.Config{BaseURL: "http://" + addr, APIKey: key, FirstContactBudget: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Viewer(context.Background())
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	if fault.KindOf(err) != fault.KindFatal || !strings.Contains(err.Error(), "cannot reach http://"+addr+"/graphql") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v", err)
	}
}
