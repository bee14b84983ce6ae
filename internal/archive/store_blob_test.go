package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestBlobMoveStreamsLargeObjects: streamCopy, which Move falls back to
// when a server-side copy fails on an object larger than it takes (5 GiB
// on S3, which no test can upload here), copies a multipart-sized object
// whole; and a Move whose source is gone but whose target is there is a
// finished move.
func TestBlobMoveStreamsLargeObjects(t *testing.T) {
	s3 := testenv.SharedS3(t)
	st, err := OpenStore(s3.Location(s3.CreateBucket(t, "move"), "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB: a multipart upload
	if err := st.WriteFile(".staging/big", body); err != nil {
		t.Fatal(err)
	}
	bs := st.(*blobStore)
	if err := bs.streamCopy(".staging/big", "blobs/big"); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove(".staging/big"); err != nil {
		t.Fatal(err)
	}
	got, err := st.ReadFile("blobs/big")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("moved object: %d bytes, %v; want %d bytes equal", len(got), err, len(body))
	}
	// Move itself: a missing source whose target exists is a finished move.
	if err := st.Move(".staging/big", "blobs/big"); err != nil {
		t.Fatalf("repeated move: %v", err)
	}
}

// TestBlobCreateExclusiveRefused: on every object store, creating an
// object that exists fails with fs.ErrExist and leaves the first body (on
// Azure, gocloud.dev's Write-and-Close path panicked here instead).
func TestBlobCreateExclusiveRefused(t *testing.T) {
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) {
			st, err := OpenStore(store.Start(t)(t, "a"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.CreateExclusive("lock", []byte("first")); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateExclusive("lock", []byte("second")); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("second create: %v, want fs.ErrExist", err)
			}
			if got, err := st.ReadFile("lock"); err != nil || string(got) != "first" {
				t.Fatalf("lock holds %q, %v; want first", got, err)
			}
		})
	}
}

// TestBlobStreamedObjects: an object larger than smallObject streams
// through Bucket.Upload on every object store: committed, it reads back
// whole; aborted, it leaves no object.
func TestBlobStreamedObjects(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 9<<16) // 9 MiB
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) {
			st, err := OpenStore(store.Start(t)(t, "a"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for _, commit := range []bool{true, false} {
				w, err := st.Create(fmt.Sprintf("big-%v", commit))
				if err != nil {
					t.Fatal(err)
				}
				for off := 0; off < len(body); off += 1 << 20 {
					if _, err := w.Write(body[off:min(off+1<<20, len(body))]); err != nil {
						t.Fatal(err)
					}
				}
				if !commit {
					w.Abort()
					if _, err := st.Stat("big-false"); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("aborted object: %v, want fs.ErrNotExist", err)
					}
					continue
				}
				if err := w.Commit(); err != nil {
					t.Fatal(err)
				}
				if got, err := st.ReadFile("big-true"); err != nil || !bytes.Equal(got, body) {
					t.Fatalf("streamed object: %d bytes, %v; want %d bytes equal", len(got), err, len(body))
				}
			}
		})
	}
}
