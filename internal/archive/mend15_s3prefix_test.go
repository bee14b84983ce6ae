package archive_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runferry/runferry/internal/testenv"
)

// TestS3EscapedPrefixReleases: in an archive whose prefix gocloud.dev's S3
// driver stores under an escaped name (it holds what reads as one of its
// escapes), the writers' deletes reach the objects they wrote: after the
// writes no lock object and nothing under .staging/ is left in the
// bucket, and the archive reads back whole.
func TestS3EscapedPrefixReleases(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := s.CreateBucket(t, "escprefix")
	loc := s.Location(bucket, "p__0x41__q")
	want := growArchive(t, loc, 2, 20, 0, 2)
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if len(keys) == 0 {
		t.Fatal("the bucket holds no object: the test sees nothing")
	}
	for _, k := range keys {
		if strings.Contains(k, ".lock") || strings.Contains(k, ".staging/") {
			t.Errorf("left in the bucket after the writers closed: %s", k)
		}
	}
	expectEqual(t, loc, want)
}
