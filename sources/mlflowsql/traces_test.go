package mlflowsql_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources"
)

// TestTracesMatchServer: traces MLflow's own tracing client logged through
// a real server (testdata/mlflow/make_traces.py: spans in the tracking
// store, a failed trace, a trace in no run, a traces-only experiment), read
// from the SQLite and PostgreSQL stores directly, equal what the server
// serving the store returns, spans included (check in both directions).
// The traces are in the package's filled stores (filledStore), under their
// own experiment prefix, next to populate.py's runs.
func TestTracesMatchServer(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgresql"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv, store := filledStore(t, backend)
			store = withQuery(store, "experiment-prefix="+tracesPrefix+"&instance=127.0.0.1:"+strconv.Itoa(srv.Port)+"&artifacts="+srv.ArtifactDir)
			server := "mlflow+http://127.0.0.1:" + strconv.Itoa(srv.Port) + "?experiment-prefix=" + tracesPrefix
			res := assertSame(t, store, server)
			if res.Traces != 4 {
				t.Errorf("compared %d traces, want the 4 make_traces.py logged", res.Traces)
			}
			src := mustOpen(t, store)
			ctx := context.Background()
			spans := 0
			for e := range src.Experiments(ctx) {
				for tr, err := range src.(sources.TraceReader).Traces(ctx, e.Origin) {
					if err != nil {
						t.Fatal(err)
					}
					spans += strings.Count(string(tr.Spans), `"span_id"`)
				}
			}
			if spans != 5 {
				t.Errorf("read %d spans, want 5 (agent and its llm child, broken, outside, lonely)", spans)
			}
			if om := src.(sources.Omitter).Omitted(ctx); len(om) != 0 {
				t.Errorf("Omitted = %v, want nothing", om)
			}
		})
	}
}

// tracesPrefix starts the names of make_traces.py's experiments in the
// filled stores.
const tracesPrefix = "traces/"

// filled holds, per backend, whether filledStore's one filling succeeded.
var filled = map[string]*struct {
	once sync.Once
	ok   bool
}{"sqlite": {}, "postgresql": {}}

// filledStore returns the package's shared MLflow server on backend
// ("sqlite": testenv.SharedMLflow; "postgresql": testenv.SharedMLflowPostgres),
// filled once per test binary with testdata/populate.py's store and
// make_traces.py's traces (experiments starting with tracesPrefix), and the
// location reading its store directly. Tests
// only read it: TestCreatedStoresMatchServer and TestTracesMatchServer share
// one server a backend instead of starting two (a start costs 8-10 s of
// CPU, docs/TESTING.md).
func filledStore(t *testing.T, backend string) (*testenv.MLflowServer, string) {
	t.Helper()
	var srv *testenv.MLflowServer
	var store string
	switch backend {
	case "sqlite":
		srv = testenv.SharedMLflow(t)
		store = "mlflow+sqlite:" + strings.TrimPrefix(srv.BackendURI, "sqlite:///")
	case "postgresql":
		srv = testenv.SharedMLflowPostgres(t)
		store = strings.Replace(srv.BackendURI, "postgresql+psycopg2://", "mlflow+postgresql://", 1)
	default:
		t.Fatalf("no filled store on %q", backend)
	}
	f := filled[backend]
	f.once.Do(func() {
		// populate.py, then make_traces.py, in one Python process: one import
		// of MLflow's client (a few seconds of CPU) instead of two.
		cmd := exec.Command(testenv.Python(t), "-c", `import runpy, sys
runpy.run_path("testdata/populate.py", run_name="__main__")
sys.argv = ["make_traces.py"] + sys.argv[1:]
runpy.run_path("../../testdata/mlflow/make_traces.py", run_name="__main__")`, srv.URL, tracesPrefix)
		cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+srv.URL, "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("populate.py and make_traces.py: %v\n%s", err, out)
		}
		f.ok = true
	})
	if !f.ok {
		t.Fatalf("the %s store was not filled (see the test that filled it)", backend)
	}
	return srv, store
}

// withQuery adds the query options q to the location loc.
func withQuery(loc, q string) string {
	if strings.Contains(loc, "?") {
		return loc + "&" + q
	}
	return loc + "?" + q
}
