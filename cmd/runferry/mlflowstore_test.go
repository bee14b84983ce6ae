package main

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestCheckMLflowSQLStore: `runferry check` between an MLflow SQLite store
// read directly and the real MLflow server serving it exits 0 with no
// difference; a copy from the store into an archive checks clean against
// the server too (the same runs, by origin); a store at an alembic revision
// runferry does not know is refused with exit 1 and one line naming it.
func TestCheckMLflowSQLStore(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	srv := testenv.StartMLflow(t)
	cmd := exec.Command(testenv.Python(t), "../../sources/mlflowsql/testdata/populate.py")
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+srv.URL, "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("populate.py: %v\n%s", err, out)
	}
	db := strings.TrimPrefix(srv.BackendURI, "sqlite:///")
	store := "mlflow+sqlite:" + db + "?instance=127.0.0.1:" + strconv.Itoa(srv.Port) + "&artifacts=" + srv.ArtifactDir
	server := "mlflow+" + srv.URL
	code, out, errOut := runCLI(t, "check", store, server)
	if code != 0 || !strings.Contains(out, "3 match, 0 differences") {
		t.Fatalf("check %s %s: exit %d\n%s\n%s", store, server, code, out, errOut)
	}
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", store, archive, "--no-state"); code != 0 || !strings.Contains(out, "copied 3 runs") {
		t.Fatalf("copy %s %s: exit %d\n%s\n%s", store, archive, code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", server, archive); code != 0 || !strings.Contains(out, "3 match, 0 differences") {
		t.Fatalf("check %s %s: exit %d\n%s\n%s", server, archive, code, out, errOut)
	}

	future := filepath.Join(t.TempDir(), "future.db")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(future, b, 0o644); err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite", future)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(`UPDATE alembic_version SET version_num = 'abcdef012345'`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	code, out, errOut = runCLI(t, "ls", "mlflow+sqlite:"+future)
	if code != 1 || !strings.Contains(errOut, `"abcdef012345"`) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || out != "" {
		t.Fatalf("ls a store at a future revision: exit %d, stdout %q, stderr %q; want exit 1 and one line naming the revision", code, out, errOut)
	}
}
