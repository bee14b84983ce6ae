package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestCopyMLflowReachedAnotherWayRefused: one MLflow server named in a way
// its spelling does not give away (another address in front of it: a
// proxy, a DNS alias) or read through its own store (mlflow+sqlite: of its
// database) as SRC, with the server as DST, is refused as the same server,
// exit 2, by what both sides hold (every experiment with the same id, name
// and creation time), for copy and sync; the experiment keeps its 1 run. A
// copy of the store that went its own way since (one experiment more in
// the server) is refused as likely the same, naming the evidence and the
// option to go on, which then plans the copy. Two servers, one holding
// runferry's copy of the other's experiment, are not one: the copy and its
// re-run go ahead. (Before: the proxy and the store were copied into the
// server, exit 0, and each native run was held twice.)
func TestCopyMLflowReachedAnotherWayRefused(t *testing.T) {
	srv := testenv.StartMLflow(t)
	api := mustAPI(t, srv.URL)
	ctx := context.Background()
	expID, err := api.CreateExperiment(ctx, "rev2-native", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: "native", StartTime: 1700000000000, UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// A pass-through proxy: the real server under another address.
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }})
	defer proxy.Close()
	server := "mlflow+" + srv.URL
	db, ok := strings.CutPrefix(srv.BackendURI, "sqlite:///")
	if !ok {
		t.Fatalf("backend %s: want a SQLite store", srv.BackendURI)
	}
	store := "mlflow+sqlite:/" + strings.TrimPrefix(db, "/")
	for _, pair := range [][2]string{{"mlflow+" + proxy.URL, server}, {server, "mlflow+" + proxy.URL + "/"}, {store, server}} {
		for _, verb := range []string{"copy", "sync"} {
			code, out, errOut := runCLI(t, verb, pair[0], pair[1], "--no-state")
			if code != 2 || !strings.Contains(errOut, "SRC and DST are the same MLflow server") {
				t.Errorf("%s %s %s: exit %d, want 2 refusing one server as both\n%s%s", verb, pair[0], pair[1], code, out, errOut)
			}
		}
	}
	runs := 0
	for _, err := range api.SearchRuns(ctx, []string{expID}, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		runs++
	}
	if runs != 1 {
		t.Errorf("the experiment holds %d runs after the refused copies, want its 1", runs)
	}

	// A copy of the store, then the server gains an experiment: likely one
	// store, refused with the evidence and the option.
	body, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "clone.db")
	if err := os.WriteFile(clone, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateExperiment(ctx, "rev2-after-clone", nil); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "copy", "mlflow+sqlite:"+clone, server, "--no-state", "--dry-run")
	for _, want := range []string{"look like one MLflow store", "2 of SRC's 2 experiments", "DST holds 3", `"rev2-native"`, "--allow-same-store"} {
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("copy of a clone of DST's store: exit %d, want 2 and %q\n%s%s", code, want, out, errOut)
		}
	}
	code, out, errOut = runCLI(t, "copy", "mlflow+sqlite:"+clone, server, "--no-state", "--dry-run", "--allow-same-store")
	if code != 0 || !strings.Contains(out, "would copy 1 run") {
		t.Errorf("copy of a clone with --allow-same-store: exit %d, want 0 planning its run\n%s%s", code, out, errOut)
	}

	// Another server's experiment copied in, twice: runferry's copies are
	// no evidence of one store.
	other := testenv.SharedMLflow(t)
	oapi := mustAPI(t, other.URL)
	name := fmt.Sprintf("rev2-other-%d", testenv.FreePort(t))
	oexp, err := oapi.CreateExperiment(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oapi.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: oexp, RunName: "theirs", StartTime: 1700000000000, UserID: "bob"}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"copied 1 run", "copied 0 runs"} {
		code, out, errOut := runCLI(t, "copy", "mlflow+"+other.URL, server, "--include", name, "--no-state")
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("copy %d from another server: exit %d, want 0 and %q\n%s%s", i+1, code, want, out, errOut)
		}
	}
}

// TestCopyArchiveOrDatabaseIntoItselfRefused: an archive or a runferry SQL
// database given as both SRC and DST, also by another path to it (a
// symlink, a trailing slash, a doubled slash), is refused before anything
// is read, exit 2, for copy and sync, and the archive gains no snapshot.
// (Before: each copy "appended" to every run and wrote a snapshot of them
// all.) An earlier snapshot of the archive read into it (?snapshot=N) is
// not refused.
func TestCopyArchiveOrDatabaseIntoItselfRefused(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	db := filepath.Join(dir, "runs.db")
	for _, dst := range []string{"parquet:" + arch, "sqlite:" + db} {
		if code, out, errOut := runCLI(t, "copy", fixtures, dst, "--no-state", "--accept-gaps"); code != 0 {
			t.Fatalf("copy %s: exit %d\n%s%s", dst, code, out, errOut)
		}
	}
	snapshots := func() []string {
		names, err := filepath.Glob(filepath.Join(arch, "snapshots", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	before := snapshots()
	link := filepath.Join(dir, "link")
	if err := os.Symlink(arch, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ src, dst, want string }{
		{"parquet:" + arch, "parquet:" + arch, "SRC and DST are the same archive"},
		{"parquet:" + link + "/", "parquet:" + arch, "SRC and DST are the same archive"},
		{"sqlite:" + db, "sqlite:" + dir + "//runs.db", "SRC and DST are the same database"},
	} {
		for _, verb := range []string{"copy", "sync"} {
			code, out, errOut := runCLI(t, verb, c.src, c.dst, "--no-state", "--accept-gaps")
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("%s %s %s: exit %d, want 2 and %q\n%s%s", verb, c.src, c.dst, code, c.want, out, errOut)
			}
		}
	}
	if after := snapshots(); len(after) != len(before) {
		t.Errorf("the archive holds %d snapshots after the refused copies, want its %d", len(after), len(before))
	}
	code, out, errOut := runCLI(t, "copy", "parquet:"+arch+"?snapshot=1", "parquet:"+arch, "--no-state", "--dry-run", "--accept-gaps")
	if code != 0 {
		t.Errorf("an earlier snapshot into its archive: exit %d, want 0 (not refused)\n%s%s", code, out, errOut)
	}
}
