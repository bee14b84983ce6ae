package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/runferry/runferry/internal/testenv"
)

// racingStore is an archive's store in which, the first time a writer
// uploads an artifact body, a second writer stores the same body at the
// same key just before the upload completes (after the writer looked and
// found none there): the race of two runs, or two shards, storing the same
// file at once.
type racingStore struct {
	Store
	once     sync.Once
	refusal  error // what the store answered to the first writer's upload
	raced    string
	secondOK error // the second writer's upload
}

func (r *racingStore) hashesFirst() {}

func (r *racingStore) Create(p string) (ObjectWriter, error) {
	w, err := r.Store.Create(p)
	if err != nil || !strings.HasPrefix(p, blobsDir+"/") {
		return w, err
	}
	return &racingWriter{ObjectWriter: w, r: r, p: p}, nil
}

type racingWriter struct {
	ObjectWriter
	r   *racingStore
	p   string
	buf bytes.Buffer
}

func (w *racingWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ObjectWriter.Write(b)
}

func (w *racingWriter) Commit() error {
	first := false
	w.r.once.Do(func() {
		first = true
		w.r.raced = w.p
		w.r.secondOK = w.r.Store.WriteFile(w.p, w.buf.Bytes())
	})
	err := w.ObjectWriter.Commit()
	if first {
		w.r.refusal = err
	}
	return err
}

// TestBlobStoredMeanwhileUnderObjectLock: in an S3 bucket with Object Lock,
// an archive written with object-lock retains every body it stores, so the
// store refuses a second upload of a key another writer stored meanwhile
// (between this writer's look for the body and its upload). The body there
// is the one wanted (its key is its SHA-256), so the writer takes it as
// written instead of failing the run (37212a7, holdsBlob after a refused
// upload; before it, this failed with the store's refusal).
func TestBlobStoredMeanwhileUnderObjectLock(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := "racelock-" + strings.TrimPrefix(s.CreateBucket(t, "x"), "x-")
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("creating a bucket with Object Lock: %v", err)
	}
	loc := s.Location(bucket, "a") + "&object-lock=governance:1h"
	inner, err := OpenStore(loc)
	if err != nil {
		t.Fatal(err)
	}
	rs := &racingStore{Store: inner}
	w, err := openStoreWriter(loc, rs, false)
	if err != nil {
		inner.Close()
		t.Fatal(err)
	}
	defer w.Close()
	body := []byte("torch==2.4.0\nnumpy==2.1.0\n")
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])

	sha, n, kept, err := w.putBlob(bytes.NewReader(body), int64(len(body)), "")
	if rs.raced == "" || rs.secondOK != nil {
		t.Fatalf("the race was not staged: raced %q, second writer's upload: %v", rs.raced, rs.secondOK)
	}
	if rs.refusal == nil {
		t.Fatalf("the store took the second upload of %s: the race this test stages is not refused here", rs.raced)
	}
	t.Logf("the store refused the upload of %s: %v", rs.raced, rs.refusal)
	if err != nil {
		t.Fatalf("storing a body another writer stored meanwhile: %v", err)
	}
	if sha != want || n != int64(len(body)) || kept || rs.raced != blobPath(want) {
		t.Errorf("putBlob = %s, %d, kept %v (raced at %s); want %s, %d, false", sha, n, kept, rs.raced, want, len(body))
	}
	got, err := inner.ReadFile(blobPath(want))
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("the body stored: %q, %v", got, err)
	}
}
