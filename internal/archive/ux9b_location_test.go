package archive_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
)

// TestStoreLocationAsTyped: the location StoreLocation makes for an archive
// in object storage, which messages show, keeps its options as a user
// types them (endpoint=http://127.0.0.1:9000, not http%3A%2F%2F...), and
// still parses back to the same options whatever their values hold.
func TestStoreLocationAsTyped(t *testing.T) {
	q := url.Values{"endpoint": {"http://127.0.0.1:9000"}, "path-style": {"true"}, "verify": {"sha256"}}
	got, err := archive.StoreLocation("s3://bkt/x", q)
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://bkt/x?endpoint=http://127.0.0.1:9000&path-style=true"; got != want {
		t.Errorf("StoreLocation = %s, want %s", got, want)
	}
	odd := url.Values{
		"endpoint":    {"https://h.example:9000/a b"},
		"kms-key-id":  {"arn:aws:kms:us-east-1:1:key/a+b&c=d#e%f;g\tü"},
		"region":      {"eu-west-1"},
		"object-lock": {"governance:30d"},
	}
	got, err = archive.StoreLocation("s3://bkt/x", odd)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, _ := strings.Cut(got, "?")
	back, err := url.ParseQuery(raw)
	if err != nil || !reflect.DeepEqual(back, odd) {
		t.Errorf("StoreLocation = %s parses back to %v (%v), want %v", got, back, err, odd)
	}
	if !strings.Contains(got, "object-lock=governance:30d") || !strings.Contains(got, "endpoint=https://h.example:9000/a%20b") {
		t.Errorf("StoreLocation = %s, want the options readable", got)
	}
}
