package mlflowsql_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/all"
	"github.com/runferry/runferry/sources/mlflowsql"
	"github.com/runferry/runferry/sources/sourcetest"
)

// sampleDB is the real-world MLflow 2.13 SQLite store of the samples.
const sampleDB = "mlflow-sqlite/Agnes4Him__mlops-zoomcamp-2024/02-experiment-tracking/mlflow.db"

func openLoc(t *testing.T, raw string) (sources.Source, error) {
	t.Helper()
	src, _, err := all.Sources().Open(context.Background(), raw)
	return src, err
}

func mustOpen(t *testing.T, raw string) sources.Source {
	t.Helper()
	src, err := openLoc(t, raw)
	if err != nil {
		t.Fatalf("open %s: %v", location.Redact(raw), err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// copyFile copies src to a new file in a temporary folder and returns its path.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// assertSame runs check in both directions between the store read directly
// and the same store served by a real MLflow server, and fails on any
// difference.
func assertSame(t *testing.T, store, server string) *check.Result {
	t.Helper()
	var first *check.Result
	for i, pair := range [][2]string{{store, server}, {server, store}} {
		src, dst := mustOpen(t, pair[0]), mustOpen(t, pair[1])
		res, err := check.Run(context.Background(), src, dst, check.Options{})
		if err != nil {
			t.Fatalf("check %s %s: %v", pair[0], pair[1], err)
		}
		for _, d := range res.Differences {
			t.Errorf("check %s %s: %s", pair[0], pair[1], d.String())
		}
		if i == 0 {
			first = res
		}
	}
	return first
}

// upgrade runs `mlflow db upgrade` on an SQLite store, as a newer MLflow
// server requires before serving it.
func upgrade(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command(testenv.VenvBin(t, "mlflow"), "db", "upgrade", "sqlite:///"+path)
	cmd.Env = append(os.Environ(), "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mlflow db upgrade: %v\n%s", err, out)
	}
}

// TestSampleStoreMatchesServer: the real-world MLflow 2.13 store, read
// directly at its own revision, equals what MLflow 3's server shows of the
// same store after `mlflow db upgrade`, active and deleted runs alike; and
// the upgraded copy read directly equals it too. The sample is only read.
func TestSampleStoreMatchesServer(t *testing.T) {
	t.Parallel()
	sample := testenv.Samples(t, sampleDB)
	before, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	served := copyFile(t, sample)
	upgrade(t, served)
	srv := testenv.StartMLflow(t, testenv.WithBackendStoreURI("sqlite:///"+served))
	inst := "instance=127.0.0.1:" + strconv.Itoa(srv.Port)
	server := "mlflow+http://127.0.0.1:" + strconv.Itoa(srv.Port)
	for _, deleted := range []string{"false", "true"} {
		res := assertSame(t, "mlflow+sqlite:"+sample+"?deleted="+deleted+"&"+inst, server+"?deleted="+deleted)
		if res.Runs < 41 || res.Points < 70 || res.Models != 1 {
			t.Errorf("deleted=%s: compared %d runs, %d points, %d registered models; the sample holds 41 runs, 70 metrics and 1 registered model", deleted, res.Runs, res.Points, res.Models)
		}
	}
	assertSame(t, "mlflow+sqlite:"+served+"?"+inst, server)
	after, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("reading the sample store changed it")
	}
}

// populated starts a real MLflow server over backend (or a fresh SQLite
// store), fills it with testdata/populate.py and returns it.
func populated(t *testing.T, opts ...testenv.MLflowOption) *testenv.MLflowServer {
	t.Helper()
	srv := testenv.StartMLflow(t, opts...)
	fill(t, srv)
	return srv
}

// fill runs testdata/populate.py against srv.
func fill(t *testing.T, srv *testenv.MLflowServer) {
	t.Helper()
	cmd := exec.Command(testenv.Python(t), "testdata/populate.py")
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+srv.URL, "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("populate.py: %v\n%s", err, out)
	}
}

// TestCreatedStoresMatchServer: stores the real MLflow wrote, in SQLite,
// PostgreSQL and MariaDB, read directly, equal what the server serving them shows
// (files included, through ?artifacts=), with deleted runs and experiments
// left out, or read and marked with ?deleted=true. MariaDB runs first and
// alone (its password is set in the environment); the others in parallel.
func TestCreatedStoresMatchServer(t *testing.T) {
	t.Run("mariadb", func(t *testing.T) {
		// MLflow reaches MySQL and MariaDB through PyMySQL
		// (requirements-test.txt).
		if out, err := exec.Command(testenv.Python(t), "-c", "import pymysql").CombinedOutput(); err != nil {
			testenv.Unavailable(t, "PyMySQL in the venv (requirements-test.txt)", strings.TrimSpace(string(out)))
		}
		m := testenv.SharedMariaDB(t)
		t.Setenv("MYSQL_PWD", m.Password)
		db := m.CreateDatabase(t, "mlflow_store")
		u, err := url.Parse(db)
		if err != nil {
			t.Fatal(err)
		}
		backend := "mysql+pymysql://" + u.User.Username() + ":" + url.QueryEscape(m.Password) + "@" + u.Host + u.Path
		srv := populated(t, testenv.WithBackendStoreURI(backend))
		createdStore(t, srv, "mlflow+"+db, false)
	})
	for _, backend := range []string{"sqlite", "postgresql"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv, store := filledStore(t, backend)
			createdStore(t, srv, store, true)
		})
	}
}

// createdStore compares populate.py's store, read directly at store, with
// the server srv serving it, the whole store; traced says it holds
// make_traces.py's experiments (filledStore) too: two experiments and a run
// more.
func createdStore(t *testing.T, srv *testenv.MLflowServer, store string, traced bool) {
	store = withQuery(store, "instance=127.0.0.1:"+strconv.Itoa(srv.Port)+"&artifacts="+srv.ArtifactDir)
	server := "mlflow+http://127.0.0.1:" + strconv.Itoa(srv.Port)
	more := 0
	if traced {
		more = 1
	}
	res := assertSame(t, store, server)
	if res.Runs != 3+more || res.Experiments != 2+2*more || res.Points != 257 || res.Models != 1 {
		t.Errorf("compared %d experiments, %d runs, %d points, %d registered models; want %d (Default and store-reader, and the two of make_traces.py if traced %v), %d, 257, 1",
			res.Experiments, res.Runs, res.Points, res.Models, 2+2*more, traced, 3+more)
	}
	res = assertSame(t, store+"&deleted=true", server+"?deleted=true")
	if res.Runs != 5+more || res.Experiments != 3+2*more {
		t.Errorf("deleted=true: compared %d experiments, %d runs; want %d, %d", res.Experiments, res.Runs, 3+2*more, 5+more)
	}
	src := mustOpen(t, store)
	ctx := context.Background()
	var files []string
	for e := range src.Experiments(ctx) {
		for r := range src.Runs(ctx, e.Origin) {
			if r.Name != "parent" {
				continue
			}
			for a, err := range src.(sources.ArtifactLister).Artifacts(ctx, r.Origin) {
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, a.Path)
			}
		}
	}
	joined := strings.Join(files, " ")
	if len(files) != 4 || !strings.Contains(joined, "sub dir/notes.txt") || !strings.Contains(joined, "/logged_model.json") || !strings.Contains(joined, "/weights.bin") {
		t.Errorf("files of the parent run: %q; want its two files and its logged model's metadata and file", files)
	}
	om := src.(sources.Omitter).Omitted(ctx)
	if om["deleted experiments left out (add ?deleted=true to copy them)"] != 1 {
		t.Errorf("Omitted = %v, want the deleted experiment counted", om)
	}
}

// TestFutureRevisionRefused: a store at an alembic revision runferry does
// not know (a newer MLflow's) is refused with an error naming the revision;
// a database that is no MLflow store is refused too.
func TestFutureRevisionRefused(t *testing.T) {
	path := copyFile(t, testenv.Samples(t, sampleDB))
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE alembic_version SET version_num = 'ffee00112233'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = openLoc(t, "mlflow+sqlite:"+path)
	if err == nil || !strings.Contains(err.Error(), `"ffee00112233"`) || !strings.Contains(err.Error(), "does not know") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("open a store at a future revision: %v; want a one-line refusal naming ffee00112233", err)
	}

	empty := filepath.Join(t.TempDir(), "other.db")
	db, err = sql.Open("sqlite", empty)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE runs (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err = openLoc(t, "mlflow+sqlite:"+empty); err == nil || !strings.Contains(err.Error(), "alembic_version") {
		t.Fatalf("open a database that is no MLflow store: %v; want a refusal naming alembic_version", err)
	}
}

// TestConformance runs the source conformance suite on the sample store.
func TestConformance(t *testing.T) {
	sample := testenv.Samples(t, sampleDB)
	other := copyFile(t, sample)
	sourcetest.Run(t, sourcetest.Opt{
		Open:      func(t *testing.T) sources.Source { src, _ := openOrFail(t, "mlflow+sqlite:"+sample); return src },
		OpenOther: func(t *testing.T) sources.Source { src, _ := openOrFail(t, "mlflow+sqlite:"+other); return src },
	})
}

func openOrFail(t *testing.T, raw string) (sources.Source, error) {
	t.Helper()
	src, err := openLoc(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	return src, nil
}

// oldRevisions are the revisions TestOldRevisionsMatchServer compares with
// the server: the first (MLflow 1.0) and those that added a column or table
// the source reads.
var oldRevisions = []string{"451aebb31d03", "181f10493468", "df50e92ffc5e", "97727af70f4d", "7f2a7d5fae7d", "400f98739977"}

// TestOldRevisionsMatchServer: the same runs, written as MLflow 1.x wrote
// them and migrated by MLflow's own alembic scripts to every revision of
// its chain, one after the other, read directly at each revision. At the
// revisions that changed what the source reads, and at today's, they equal
// what today's MLflow server shows of them after the migration to today's
// revision, with and without the deleted ones; at every other revision
// they equal what is read directly at today's (so the server's too). The
// chain MLflow's alembic scripts give is exactly the list of revisions the
// source knows (revisions.go), so none is left unread.
func TestOldRevisionsMatchServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(testenv.Python(t), "testdata/oldrevisions.py", dir, "all")
	cmd.Env = append(os.Environ(), "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
	cmd.Stderr = new(strings.Builder)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oldrevisions.py: %v\n%s", err, cmd.Stderr)
	}
	var chain []string
	if err := json.Unmarshal(out, &chain); err != nil {
		t.Fatalf("oldrevisions.py printed %q: %v", out, err)
	}
	if known := mlflowsql.RevisionIDs(); !slices.Equal(chain, known) {
		t.Fatalf("MLflow's alembic chain %q\ndiffers from the revisions the source knows %q", chain, known)
	}
	srv := testenv.StartMLflow(t, testenv.WithBackendStoreURI("sqlite:///"+filepath.Join(dir, "heads.db")))
	server := "mlflow+http://127.0.0.1:" + strconv.Itoa(srv.Port)
	storeAt := func(rev string) string {
		return "mlflow+sqlite:" + filepath.Join(dir, rev+".db") + "?instance=127.0.0.1:" + strconv.Itoa(srv.Port)
	}
	heads := storeAt("heads")
	for _, rev := range append(chain, "heads") {
		store, want := storeAt(rev), heads
		if rev == "heads" || slices.Contains(oldRevisions, rev) {
			want = server
		}
		res := assertSame(t, store, want)
		if res.Runs != 3 || res.Points != 22 {
			t.Errorf("revision %s: compared %d runs, %d points; want 3, 22", rev, res.Runs, res.Points)
		}
		res = assertSame(t, store+"&deleted=true", withDeleted(want))
		if res.Runs != 5 || res.Experiments != 3 {
			t.Errorf("revision %s, deleted=true: compared %d experiments, %d runs; want 3, 5", rev, res.Experiments, res.Runs)
		}
	}
}

// withDeleted adds deleted=true to the query of location loc.
func withDeleted(loc string) string {
	if strings.Contains(loc, "?") {
		return loc + "&deleted=true"
	}
	return loc + "?deleted=true"
}
