package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runferry/runferry/internal/testenv"
)

// TestS3ArchiveCommands: copy into parquet:s3://..., check it against the
// source, and every archive verb on it, against a real S3 server; a
// tampered object is found by `archive check` (exit 4, naming it).
func TestS3ArchiveCommands(t *testing.T) {
	srv := testenv.SharedS3(t)
	bucket := srv.CreateBucket(t, "cli")
	loc := srv.Location(bucket, "backups/wandb")
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
	// A second copy changes nothing; prune keeps the one snapshot.
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc, "--no-state"); code != 0 {
		t.Fatalf("second copy: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "archive", "prune", loc, "--keep", "1"); code != 0 {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, errOut)
	}
	// Tamper with a metrics object.
	ctx := context.Background()
	list, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("backups/wandb/metrics/")})
	if err != nil || len(list.Contents) == 0 {
		t.Fatalf("listing metrics objects: %v", err)
	}
	key := *list.Contents[0].Key
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: strings.NewReader("not parquet")}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "archive", "check", loc)
	if want := fmt.Sprintf("PROBLEM s3://%s/%s: archive file is damaged", bucket, key); code != 4 || !strings.Contains(out, want) {
		t.Fatalf("tampered archive: exit %d, want 4 and %q\n%s\n%s", code, want, out, errOut)
	}
	// A copy repairs it (the run's file is found damaged by verify=sha256).
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc+"&verify=sha256", "--no-state"); code != 0 {
		t.Fatalf("repairing copy: exit %d\n%s\n%s", code, out, errOut)
	}
	// Snapshot 1 still lists the damaged file (now under history/) until
	// pruned, as on a local folder.
	if code, out, errOut := runCLI(t, "archive", "prune", loc, "--keep", "1"); code != 0 {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "archive", "check", loc); code != 0 || strings.Contains(out, "NOTE") {
		t.Fatalf("after the repair and prune: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestS3BadInput: a bucket that does not exist, wrong credentials, a
// region the server is not in and an option that is not one are one-line
// errors with exit 1 (2 for usage), that never show the secret.
func TestS3BadInput(t *testing.T) {
	srv := testenv.SharedS3(t)
	bucket := srv.CreateBucket(t, "bad")
	cases := []badInputCase{
		{"no such bucket", nil, srv.Location("no-such-bucket-x", "a"), 1, `bucket "no-such-bucket-x" does not exist`},
		{"wrong secret key", map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong-s3cr3t"}, srv.Location(bucket, "a"), 1, "SignatureDoesNotMatch"},
		{"unknown access key", map[string]string{"AWS_ACCESS_KEY_ID": "nobody"}, srv.Location(bucket, "a"), 1, "InvalidAccessKeyId"},
		{"region mismatch", nil, srv.Location(bucket, "a") + "&region=eu-west-1", 1, `the region "eu-west-1" is wrong; expecting "us-east-1"`},
		{"credentials in the location", nil, strings.Replace(srv.Location(bucket, "a"), "s3://", "s3://key:s3cr3t@", 1), 2, "credentials do not belong in the location"},
		{"unknown option", nil, srv.Location(bucket, "a") + "&regoin=x", 2, `unknown option "regoin"`},
	}
	runBadInput(t, cases, "s3cr3t", srv.SecretKey)
}

// TestS3DeniedHalfway: the bucket's policy denies the artifact bodies'
// writes (as a policy changed during a job would), so the copy, having
// committed the experiments and staged its runs' tables, stops at the
// first denied write: a one-line
// error, exit 1, an archive that checks clean with nothing half-committed;
// once the policy allows it again a re-run completes the archive.
func TestS3DeniedHalfway(t *testing.T) {
	srv := testenv.SharedS3(t)
	bucket := srv.CreateBucket(t, "deny")
	secret := srv.CreateUser(t, "writer-"+bucket)
	srv.ChangeBucketOwner(t, bucket, "writer-"+bucket)
	t.Setenv("AWS_ACCESS_KEY_ID", "writer-"+bucket)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	ctx := context.Background()
	policy := func(deny bool) {
		stmt := fmt.Sprintf(`{"Effect":"Allow","Principal":{"AWS":["writer-%[1]s"]},"Action":["s3:*"],"Resource":["arn:aws:s3:::%[1]s","arn:aws:s3:::%[1]s/*"]}`, bucket)
		if deny {
			stmt = fmt.Sprintf(`{"Effect":"Deny","Principal":{"AWS":["writer-%[1]s"]},"Action":["s3:PutObject"],"Resource":["arn:aws:s3:::%[1]s/archive/blobs/*"]},`, bucket) + stmt
		}
		doc := `{"Version":"2012-10-17","Statement":[` + stmt + `]}`
		if _, err := srv.Client().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	policy(true)
	loc := srv.Location(bucket, "archive")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc, "--no-state")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || !strings.Contains(lines[len(lines)-1], "access denied") || !strings.Contains(lines[len(lines)-1], "/archive/blobs/") {
		t.Fatalf("copy with body writes denied: exit %d, want 1 and a last line naming the denied object\n%s\n%s", code, out, errOut)
	}
	rerunAfterDenial(t, loc, func() { policy(false) })
}
