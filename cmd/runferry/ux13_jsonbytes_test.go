package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
)

// TestConfigBytesSurviveMLflow: an archive restored into MLflow and backed
// up again holds each run's config and summary as the same bytes, read by
// DuckDB. They came back indented (the MLflow sink writes its run.json
// sidecar indented, which indents the JSON held in it), so that DuckDB
// found every run's config and summary changed although check, which
// compares them as JSON, passed.
func TestConfigBytesSurviveMLflow(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	first, last := filepath.Join(dir, "first"), filepath.Join(dir, "last")
	mlf := "mlflow+" + srv.URL + "?experiment-prefix=" + fmt.Sprintf("ux13json%d-", time.Now().UnixNano())
	for _, args := range [][]string{
		{"copy", "--no-state", "--accept-gaps", "-q", fixtures, "parquet:" + first},
		{"copy", "--no-state", "-q", "--keep-personal", "parquet:" + first, mlf},
		{"copy", "--no-state", "-q", mlf, "parquet:" + last},
		{"check", "parquet:" + first, "parquet:" + last},
	} {
		if code, out, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	q := `select a.run, a.config is not distinct from b.config, a.summary is not distinct from b.summary, coalesce(b.config, '')
	      from read_parquet('` + first + `/runs/*/*.parquet') a full join read_parquet('` + last + `/runs/*/*.parquet') b using (run) order by 1`
	rows := pyRun(t, testenv.Python(t), "import duckdb,json,sys; print(json.dumps(duckdb.sql(sys.argv[1]).fetchall()))", q)
	var got [][]any
	if err := json.Unmarshal([]byte(rows), &got); err != nil {
		t.Fatalf("duckdb: %v: %s", err, rows)
	}
	if len(got) != 6 {
		t.Fatalf("duckdb: %d runs, want the 6 fixture runs: %s", len(got), rows)
	}
	for _, r := range got {
		if r[1] != true || r[2] != true {
			t.Errorf("%v: config the same bytes %v, summary %v (config now %.60q)", r[0], r[1], r[2], r[3])
		}
	}
}
