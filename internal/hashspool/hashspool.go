// Package hashspool copies a body whole into a temporary file while
// hashing it with SHA-256, so that a sink can compare the body with a copy
// it already holds before deciding whether to send it (and then send it
// from the file, as often as it needs, without reading the source again).
//
// It is shared by the SQL store (internal/sqlstore) and the MLflow sink
// (sinks/mlflow), which both keep a held file unsent when its size and
// SHA-256 are the body's.
package hashspool

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
)

// bufSize is the size of the buffer between the body and the temporary
// file: one write call per 64 KiB however small the body's reads.
const bufSize = 1 << 16

// createTemp makes the temporary file; tests replace it to make the
// file's writes fail.
var createTemp = os.CreateTemp

// File is a body spooled to a temporary file: its Size, its SHA-256 and
// its bytes, which Read gives from the start and ReadAt at any offset.
// Close removes the file. A File is not safe for concurrent use, except
// ReadAt.
type File struct {
	// Size is the number of bytes the body held.
	Size int64
	// SHA256 is the lowercase hex SHA-256 of the body.
	SHA256 string

	f      *os.File
	r      *io.SectionReader
	closed bool
}

// TempFileError is the error New returns when the temporary file, not the
// body, failed: creating, writing or flushing it (a full or read-only
// disk, a missing directory). Op says which.
type TempFileError struct {
	Op  string // "create", "write"
	Err error
}

func (e *TempFileError) Error() string { return "temporary file: " + e.Op + ": " + e.Err.Error() }
func (e *TempFileError) Unwrap() error { return e.Err }

// New reads body to its end into a new temporary file created in dir
// with pattern, as os.CreateTemp does ("" is the system's temporary
// directory), hashing it on the way.
//
// On success the caller owns the File and must Close it, which removes
// the temporary file. On any error no File is returned and no temporary
// file is left behind: an error from the body is returned as it is (the
// bytes read until then are discarded), an error of the temporary file is
// a *TempFileError.
func New(dir, pattern string, body io.Reader) (*File, error) {
	f, err := createTemp(dir, pattern)
	if err != nil {
		return nil, &TempFileError{Op: "create", Err: err}
	}
	w := &hashingWriter{b: bufio.NewWriterSize(f, bufSize), h: sha256.New()}
	n, err := io.CopyBuffer(w, body, make([]byte, bufSize))
	if err == nil {
		if ferr := w.b.Flush(); ferr != nil {
			w.err, err = ferr, ferr
		}
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		if w.err != nil {
			return nil, &TempFileError{Op: "write", Err: w.err}
		}
		return nil, err
	}
	return &File{
		Size:   n,
		SHA256: hex.EncodeToString(w.h.Sum(nil)),
		f:      f,
		r:      io.NewSectionReader(f, 0, n),
	}, nil
}

// hashingWriter writes to the file's buffer and to the hash, and keeps
// the buffer's error apart from the body's.
type hashingWriter struct {
	b   *bufio.Writer
	h   hash.Hash
	err error
}

func (w *hashingWriter) Write(p []byte) (int, error) {
	n, err := w.b.Write(p)
	w.h.Write(p[:n])
	if err != nil {
		w.err = err
	}
	return n, err
}

// Read reads the body, from its start on the first call.
func (s *File) Read(p []byte) (int, error) { return s.r.Read(p) }

// ReadAt reads the body at off; it does not move Read's position.
func (s *File) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }

// Name is the temporary file's path, valid until Close.
func (s *File) Name() string { return s.f.Name() }

// Close closes and removes the temporary file. Calling it again does
// nothing and returns nil.
func (s *File) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(s.f.Close(), os.Remove(s.f.Name()))
}
