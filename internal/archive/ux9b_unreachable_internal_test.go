package archive

import (
	"net"
	"testing"
	"time"
)

// TestUnreachableGCSFailsSoon: a gs:// archive whose endpoint refuses
// connections is refused within reachTimeout, on one line naming the
// endpoint and "cannot reach", instead of hanging (the GCS client retries
// a refused connection until its context ends). S3 is tested through the
// CLI (cmd/runferry TestUnreachableObjectStore).
func TestUnreachableGCSFailsSoon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	defer func(d time.Duration) { reachTimeout = d }(reachTimeout)
	reachTimeout = 3 * time.Second
	start := time.Now()
	_, err = OpenStore("gs://bkt/wb?endpoint=http://" + closed)
	took := time.Since(start)
	want := "gs://bkt/wb: cannot reach http://" + closed + ": dial tcp " + closed + ": connect: connection refused (no answer within 3s)"
	if err == nil || err.Error() != want {
		t.Errorf("open: %v\nwant %s", err, want)
	}
	if took > reachTimeout+5*time.Second {
		t.Errorf("took %s; want about %s", took, reachTimeout)
	}
}
