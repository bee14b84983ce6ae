package main

import (
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestGCSArchiveCommands: copy into parquet:gs://..., check it against the
// source, and the archive verbs on it, against fake-gcs-server (a GCS
// emulator on 127.0.0.1).
func TestGCSArchiveCommands(t *testing.T) {
	srv := testenv.SharedGCS(t)
	loc := srv.Location(srv.CreateBucket(t, "cli"), "backups/wandb")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", fixtures, "parquet:"+loc); code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "archive", "check", loc)
	if code != 0 || !strings.Contains(out, "is intact: snapshot 1 (1 kept), 6 runs") {
		t.Fatalf("archive check: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, verb := range []string{"summary", "snapshots"} {
		if code, out, errOut := runCLI(t, "archive", verb, loc); code != 0 {
			t.Errorf("archive %s: exit %d\n%s\n%s", verb, code, out, errOut)
		}
	}
	if code, out, errOut := runCLI(t, "archive", "prune", loc, "--keep", "1"); code != 0 {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestGCSBadInput: a bucket that does not exist, no Google credentials,
// credentials in the location and options that do not apply are one-line
// errors with exit 1 (2 for usage; an S3 option, which the parquet adapter
// takes, is refused when the archive is opened, 1 as for azblob://) that
// never show the secret.
func TestGCSBadInput(t *testing.T) {
	srv := testenv.SharedGCS(t)
	bucket := srv.CreateBucket(t, "bad")
	cases := []badInputCase{
		{"no such bucket", nil, srv.Location("no-such-bucket-x", "a"), 1, `bucket "no-such-bucket-x" does not exist`},
		{"no Google credentials", nil, "gs://" + bucket + "/a", 1, "no Google credentials (Application Default Credentials"},
		{"credentials in the location", nil, strings.Replace(srv.Location(bucket, "a"), "gs://", "gs://key:s3cr3t@", 1), 2, "credentials do not belong in the location; they come from the environment (Google's Application Default Credentials"},
		{"an S3 option", nil, srv.Location(bucket, "a") + "&region=eu", 1, "option region applies to s3:// archives only"},
		{"unknown option", nil, srv.Location(bucket, "a") + "&key=s3cr3t", 2, `unknown option "key"`},
	}
	runBadInput(t, cases, "s3cr3t")
}
