package main

import (
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestAzureBadInput: a container that does not exist, a wrong account key
// (Azurite checks Shared Key signatures; the environment is read at each
// open, so one process sees each case's), no account at all, credentials
// in the location and an S3 option are one-line errors with exit 1 (2 for
// usage) that never show a secret, and write nothing.
func TestAzureBadInput(t *testing.T) {
	srv := testenv.SharedAzurite(t)
	container := srv.CreateContainer(t, "bad")
	cases := []badInputCase{
		{"no such container", nil, srv.Location("no-such-container-x", "a"), 1, `bucket "no-such-container-x" does not exist`},
		{"wrong account key", map[string]string{"AZURE_STORAGE_KEY": "d3JvbmctczNjcjN0LWtleS13cm9uZy1zM2NyM3Qta2V5LXdyb25nLXMzY3IzdA=="}, srv.Location(container, "a"), 1, "access denied (403 AuthorizationFailure)"},
		{"no account", map[string]string{"AZURE_STORAGE_ACCOUNT": "", "AZURE_STORAGE_KEY": ""}, srv.Location(container, "a"), 1, "AZURE_STORAGE_ACCOUNT"},
		{"credentials in the location", nil, strings.Replace(srv.Location(container, "a"), "azblob://", "azblob://key:s3cr3t@", 1), 2, "credentials do not belong in the location; they come from the environment (AZURE_STORAGE_ACCOUNT"},
		{"an S3 option", nil, srv.Location(container, "a") + "?region=eu", 1, "option region applies to s3:// archives only"},
	}
	runBadInput(t, cases, "s3cr3t", "d3JvbmctczNjcjN0", "Eby8vdM02xNOcqFl")
	// Nothing was written into the container that exists.
	if code, out, errOut := runCLI(t, "archive", "check", srv.Location(container, "a")); code != 1 || !strings.Contains(errOut, "is not a runferry archive") {
		t.Errorf("archive check of the untouched container: exit %d\n%s\n%s", code, out, errOut)
	}
}
