package archive_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

// TestGCSEmulatorHost: without the endpoint option, STORAGE_EMULATOR_HOST
// (the variable Google's client libraries read) names the emulator.
func TestGCSEmulatorHost(t *testing.T) {
	g := testenv.SharedGCS(t)
	bucket := g.CreateBucket(t, "emuhost")
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(g.Endpoint, "http://"))
	loc := "gs://" + bucket + "/a"
	d := dataset.Canonical()
	write(t, loc, d)
	expectEqual(t, loc, d)
	// The same archive through the endpoint option.
	expectEqual(t, g.Location(bucket, "a"), d)
}

// TestGCSBadLocations: a missing bucket, credentials in the location, no
// Google credentials at all, and options that do not apply each fail at
// open with one line naming the location, and create nothing.
func TestGCSBadLocations(t *testing.T) {
	g := testenv.SharedGCS(t)
	bucket := g.CreateBucket(t, "bad")
	ep := url.Values{"endpoint": {g.Endpoint}}.Encode()
	for _, c := range []struct{ name, loc, want string }{
		{"missing bucket", "gs://no-such-bucket-" + bucket + "/a?" + ep, `bucket "no-such-bucket-` + bucket + `" does not exist`},
		{"credentials", "gs://user:secret@" + bucket + "/a?" + ep, "credentials do not belong in the location"},
		{"no ADC", "gs://" + bucket + "/a", "no Google credentials (Application Default Credentials"},
		{"https endpoint, no ADC", "gs://" + bucket + "/a?endpoint=https://storage.example.invalid", "no Google credentials"},
		{"S3 option", "gs://" + bucket + "/a?region=eu&" + ep, "option region applies to s3:// archives only"},
		{"unknown option", "gs://" + bucket + "/a?token=x&" + ep, `unknown option "token"`},
		{"bad endpoint", "gs://" + bucket + "/a?endpoint=ftp://x", `endpoint "ftp://x"`},
		{"no bucket", "gs:///a", "no bucket named"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := archive.OpenStore(c.loc)
			if err == nil {
				st.Close()
				t.Fatalf("opened %s", c.loc)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "secret") {
				t.Fatalf("error %q, want one line containing %q (and no secret)", msg, c.want)
			}
			if !strings.HasPrefix(msg, "gs://") && !strings.HasPrefix(msg, "archive location") {
				t.Errorf("error %q does not start with the location", msg)
			}
		})
	}
	// Nothing was created in the bucket that exists.
	st, err := archive.OpenStore(g.Location(bucket, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if top, err := st.Top(); err != nil || len(top) != 0 {
		t.Errorf("the bucket holds %v, %v; want nothing", top, err)
	}
}
