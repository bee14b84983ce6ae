package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestCheckNamesUnreachableLocation: check against an MLflow server that
// does not answer (a free port, nothing listening) names the location of
// the side it could not reach, as copy does ("destination
// mlflow+http://HOST:PORT: mlflow: cannot connect ..."), on either side,
// without the token the environment holds. Before, check said
// "destination: mlflow: cannot connect ..." without the location.
func TestCheckNamesUnreachableLocation(t *testing.T) {
	const secret = "pl4nted-T0KEN-check"
	t.Setenv("MLFLOW_TRACKING_TOKEN", secret)
	down := fmt.Sprintf("mlflow+http://127.0.0.1:%d", testenv.FreePort(t))
	archive := "parquet:" + filepath.Join(t.TempDir(), "a")
	if code, out, errOut := runCLI(t, "copy", fixtures, archive, "--no-state", "--run", "fxa00001"); code != 0 && code != 3 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, c := range []struct{ side, src, dst string }{
		{"destination", archive, down},
		{"source", down, archive},
	} {
		code, out, errOut := runCLI(t, "check", c.src, c.dst)
		want := c.side + " " + down + ": mlflow: cannot connect"
		if code != exitFatal || !strings.Contains(errOut, want) {
			t.Errorf("check %s %s: exit %d, want %d and %q in\n%s%s", c.src, c.dst, code, exitFatal, want, out, errOut)
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("check %s %s printed the token:\n%s%s", c.src, c.dst, out, errOut)
		}
	}
}
