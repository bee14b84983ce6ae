package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runferry/runferry/internal/testenv"
)

// TestS3ObjectLockCLI: parquet:s3://...&object-lock=governance:30d copies
// into a bucket with Object Lock and the archive checks; an unknown mode
// is refused before anything is written: one line, exit 1.
func TestS3ObjectLockCLI(t *testing.T) {
	srv := testenv.SharedS3(t)
	bucket := "locked-" + strings.TrimPrefix(srv.CreateBucket(t, "x"), "x-")
	if _, err := srv.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	loc := srv.Location(bucket, "backups")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc+"&object-lock=legal:30d", "--no-state")
	if code != 1 || !strings.Contains(errOut, `option object-lock="legal:30d": unknown mode "legal": want governance or compliance`) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("unknown mode: exit %d\n%s\n%s", code, out, errOut)
	}
	if list, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); err != nil || len(list.Contents) != 0 {
		t.Errorf("refused copy left objects (%v): %+v", err, list)
	}
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc+"&object-lock=governance:30d", "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "archive", "check", loc); code != 0 {
		t.Fatalf("archive check: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", fixtures, "parquet:"+loc); code != 0 {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
}
