package mlflowsql_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources"
)

// TestTracesMatchServer: traces MLflow's own tracing client logged through
// a real server (testdata/mlflow/make_traces.py: spans in the tracking
// store, a failed trace, a trace in no run, a traces-only experiment), read
// from the SQLite and PostgreSQL stores directly, equal what the server
// serving the store returns, spans included (check in both directions).
func TestTracesMatchServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testenv.MLflowOption
	}{{"sqlite", nil}, {"postgresql", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			if tc.name == "postgresql" {
				opts = append(opts, testenv.WithPostgres(testenv.SharedPostgres(t)))
			}
			srv := testenv.StartMLflow(t, opts...)
			cmd := exec.Command(testenv.Python(t), "../../testdata/mlflow/make_traces.py", srv.URL)
			cmd.Env = append(os.Environ(), "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make_traces.py: %v\n%s", err, out)
			}
			store := "mlflow+sqlite:" + strings.TrimPrefix(srv.BackendURI, "sqlite:///") + "?"
			if tc.name == "postgresql" {
				store = strings.Replace(srv.BackendURI, "postgresql+psycopg2://", "mlflow+postgresql://", 1) + "&"
			}
			store += "instance=127.0.0.1:" + strconv.Itoa(srv.Port) + "&artifacts=" + srv.ArtifactDir
			server := "mlflow+http://127.0.0.1:" + strconv.Itoa(srv.Port)
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
