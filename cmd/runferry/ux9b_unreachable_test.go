package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnreachableObjectStore: an archive location whose object-storage
// endpoint does not answer (nothing listens on its port) is refused on one
// line that names the endpoint and says it cannot be reached, as the MLflow
// and W&B sources say it, with exit 1; not the SDK's chain of wrapped
// errors ("blob (code=Unknown): operation error S3: ListObjectsV2, exceeded
// maximum number of attempts, 3, https response error StatusCode: 0, ...").
func TestUnreachableObjectStore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "runferrytest", "AWS_SECRET_ACCESS_KEY": "ux9b-not-a-real-secret", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "us-east-1", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
	} {
		t.Setenv(k, v)
	}
	s3loc := "s3://bkt/wb?endpoint=http://" + closed + "&path-style=true"
	for _, tc := range []struct {
		name string
		args []string
		want string // the endpoint as the line names it
	}{
		{"copy into S3", []string{"copy", "--accept-gaps", fixtures, "parquet:" + s3loc, "--no-state"}, "cannot reach http://" + closed + " (3 attempts): dial tcp " + closed + ": connect: connection refused"},
		{"ls of S3", []string{"ls", "parquet:" + s3loc}, "cannot reach http://" + closed + " (3 attempts): "},
		{"check against S3", []string{"check", fixtures, "parquet:" + s3loc}, "cannot reach http://" + closed + " (3 attempts): "},
		{"archive summary in S3", []string{"archive", "summary", s3loc}, "cannot reach http://" + closed + " (3 attempts): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			line := strings.TrimSpace(errOut)
			if code != exitFatal || strings.Contains(line, "\n") || !strings.HasPrefix(line, "runferry: ") ||
				!strings.Contains(line, tc.want) {
				t.Fatalf("exit %d, want 1 and one line holding %q\nstdout:\n%s\nstderr:\n%s", code, tc.want, out, errOut)
			}
			for _, noise := range []string{"operation error", "StatusCode", "code=Unknown", "ListObjectsV2", "RequestID", "ux9b-not-a-real-secret"} {
				if strings.Contains(line, noise) {
					t.Errorf("the line holds %q: %s", noise, line)
				}
			}
			t.Log(line)
		})
	}
}
