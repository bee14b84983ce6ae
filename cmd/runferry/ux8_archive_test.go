package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestCheckNamesTheSideThatFails: check's DST is read as a source, but an
// error opening it names it as the destination: "destination parquet:s3://...:
// ... is not a runferry archive", where it said "source parquet:s3://..."
// of the location given second (an empty prefix in a bucket, a missing
// local archive, a scheme nothing reads). SRC's errors still say source.
func TestCheckNamesTheSideThatFails(t *testing.T) {
	srv := testenv.SharedS3(t)
	empty := "parquet:" + srv.Location(srv.CreateBucket(t, "side"), "nothing-here")
	missing := "parquet:" + filepath.Join(t.TempDir(), "no-archive")
	for _, tc := range []struct {
		src, dst, want string
		code           int
	}{
		{fixtures, empty, "destination parquet:s3://", exitFatal},
		{fixtures, missing, "destination " + missing + ":", exitFatal},
		{fixtures, "nope:/x", `destination location "nope:/x": unknown scheme`, exitUsage},
		{missing, fixtures, "source " + missing + ":", exitFatal},
	} {
		code, out, errOut := runCLI(t, "check", tc.src, tc.dst)
		if code != tc.code || !strings.Contains(errOut, "runferry: "+tc.want) {
			t.Errorf("check %s %s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant the error to begin %q", tc.src, tc.dst, code, tc.code, out, errOut, tc.want)
		}
	}
}
