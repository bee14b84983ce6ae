package hashspool

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// leftIn fails the test when dir holds any file.
func leftIn(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("temporary file left behind: %s", e.Name())
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestSpoolsAndHashes(t *testing.T) {
	for _, n := range []int{0, 1, bufSize - 1, bufSize, bufSize + 1, 3*bufSize + 17} {
		dir := t.TempDir()
		body := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(n), byte(n >> 8)}).Read(body)
		// OneByteReader: the body comes in the smallest reads.
		f, err := New(dir, "t-*", iotest.OneByteReader(bytes.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		if f.Size != int64(n) || f.SHA256 != sum(body) {
			t.Errorf("%d bytes: got size %d sha256 %s, want %d %s", n, f.Size, f.SHA256, n, sum(body))
		}
		if filepath.Dir(f.Name()) != dir {
			t.Errorf("spooled to %s, not in %s", f.Name(), dir)
		}
		onDisk, err := os.ReadFile(f.Name())
		if err != nil || !bytes.Equal(onDisk, body) {
			t.Errorf("%d bytes: the file holds %d bytes (%v), not the body", n, len(onDisk), err)
		}
		// ReadAt does not move Read, which starts at the beginning.
		if n > 2 {
			p := make([]byte, 2)
			if _, err := f.ReadAt(p, int64(n-2)); err != nil || !bytes.Equal(p, body[n-2:]) {
				t.Errorf("%d bytes: ReadAt at the end: %q, %v", n, p, err)
			}
		}
		got, err := io.ReadAll(f)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("%d bytes: Read gave %d bytes (%v), not the body", n, len(got), err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		leftIn(t, dir)
	}
}

// patterned is a body of n bytes of a fixed pseudo-random stream, never
// held whole in memory.
func patterned(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{7}), n)
}

func TestLargeBody(t *testing.T) {
	const n = 96<<20 + 5 // more than the MLflow sink's small-file limit, not a multiple of the buffer
	h := sha256.New()
	if _, err := io.Copy(h, patterned(n)); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	dir := t.TempDir()
	f, err := New(dir, "t-*", patterned(n))
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != n || f.SHA256 != want {
		t.Errorf("got size %d sha256 %s, want %d %s", f.Size, f.SHA256, int64(n), want)
	}
	// The file's own bytes, read back, hash the same.
	h.Reset()
	if m, err := io.Copy(h, f); err != nil || m != n || hex.EncodeToString(h.Sum(nil)) != want {
		t.Errorf("read back %d bytes (%v), sha256 %x", m, err, h.Sum(nil))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	leftIn(t, dir)
}

func TestBodyErrorRemovesFile(t *testing.T) {
	dir := t.TempDir()
	bad := errors.New("connection reset")
	// A body that fails after more than a buffer's worth, so bytes
	// reached the file before the failure.
	body := io.MultiReader(patterned(3*bufSize), iotest.ErrReader(bad))
	f, err := New(dir, "t-*", body)
	if f != nil || !errors.Is(err, bad) {
		t.Fatalf("got %v, %v; want no file and the body's error", f, err)
	}
	var te *TempFileError
	if errors.As(err, &te) {
		t.Errorf("the body's error was reported as the temporary file's: %v", err)
	}
	leftIn(t, dir)
}

func TestCreateError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	f, err := New(dir, "t-*", bytes.NewReader([]byte("x")))
	var te *TempFileError
	if f != nil || !errors.As(err, &te) || te.Op != "create" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, %v; want no file and a create *TempFileError wrapping ErrNotExist", f, err)
	}
}

// TestWriteErrorRemovesFile makes the temporary file refuse writes (it is
// opened read-only), for a body smaller than the buffer (failing at the
// flush) and a larger one (failing during the copy).
func TestWriteErrorRemovesFile(t *testing.T) {
	for _, n := range []int64{10, 5 * bufSize} {
		dir := t.TempDir()
		createTemp = func(dir, pattern string) (*os.File, error) {
			f, err := os.CreateTemp(dir, pattern)
			if err != nil {
				return nil, err
			}
			f.Close()
			return os.Open(f.Name())
		}
		f, err := New(dir, "t-*", patterned(n))
		createTemp = os.CreateTemp
		var te *TempFileError
		if f != nil || !errors.As(err, &te) || te.Op != "write" {
			t.Errorf("%d bytes: got %v, %v; want no file and a write *TempFileError", n, f, err)
		}
		leftIn(t, dir)
	}
}
