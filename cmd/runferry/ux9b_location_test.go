package main

import (
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestArchiveLocationShownAsTyped: an error about an archive in object
// storage shows its location as the user typed it, in the message as in
// its prefix (it was URL-encoded in the message: "s3://bkt/x?endpoint=
// http%3A%2F%2F127.0.0.1%3A17999&path-style=true is not a runferry
// archive"), and the S3 secret in the environment is never shown.
func TestArchiveLocationShownAsTyped(t *testing.T) {
	s := testenv.SharedS3(t)
	typed := "s3://" + s.CreateBucket(t, "typed") + "/typo?endpoint=" + s.Endpoint + "&path-style=true"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ls", []string{"ls", "parquet:" + typed}},
		{"copy from", []string{"copy", "parquet:" + typed, "parquet:" + t.TempDir(), "--no-state"}},
		{"check against", []string{"check", fixtures, "parquet:" + typed}},
		{"archive summary", []string{"archive", "summary", typed}},
		{"archive check", []string{"archive", "check", typed}},
		{"archive prune", []string{"archive", "prune", typed, "--keep", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			line := strings.TrimSpace(errOut)
			if code == 0 || strings.Contains(line, "\n") || !strings.Contains(line, typed+" is not a runferry archive") {
				t.Fatalf("exit %d, want one line saying %s is not a runferry archive\nstdout:\n%s\nstderr:\n%s", code, typed, out, errOut)
			}
			if strings.Contains(line, "%3A") || strings.Contains(line, "%2F") || strings.Contains(line, s.SecretKey) {
				t.Errorf("the line shows the location encoded, or the secret: %s", line)
			}
			t.Log(line)
		})
	}
}
