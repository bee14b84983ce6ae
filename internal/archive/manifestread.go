package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// streamManifest parses and verifies a manifest read from r (name is the
// file it came from, for errors), as json.Decoder.Decode with
// DisallowUnknownFields parses a Manifest, without ever holding the
// manifest's bytes whole: it reads them token by token, hashing them as
// they pass for canonicalChecksum. With spill, each run entry is handed,
// as soon as it is decoded, to a runSpill in the local folder spillDir
// and kept as a spilled entry (Origin, Experiment and Snapshot, and where
// the rest lies: RunEntry.full reads it back), so that the memory it
// holds does not grow with the size of the runs' entries (their files,
// marks and cursors: several KB a run, hundreds of MB for 60,000 runs).
// The spill file is closed when the manifest it belongs to is no longer
// reachable (it is removed from its folder when created, where the system
// allows). Without spill every entry is held whole, as Decode holds it.
func streamManifest(name string, r io.Reader, spill bool, spillDir string) (m *Manifest, err error) {
	var rs *runSpill
	defer func() {
		if err != nil && rs != nil {
			rs.close()
		}
	}()
	m, err = decodeManifestStream(name, r, spill, spillDir, &rs)
	return m, err
}

// decodeManifestStream is streamManifest, with the spill it creates
// left in *rs.
func decodeManifestStream(name string, r io.Reader, spill bool, spillDir string, rsp **runSpill) (*Manifest, error) {
	hr := &lagHasher{r: r, h: sha256.New(), keep: len(checksumTail) + 2*sha256.Size + len("\"\n}\n")}
	dec := json.NewDecoder(bufio.NewReaderSize(hr, 64<<10))
	dec.DisallowUnknownFields()
	var m Manifest
	damaged := func(err error) error {
		if m.Format == FormatName && m.FormatVersion > FormatVersion {
			// A newer format may add fields: say so rather than "damaged".
			return fmt.Errorf("%s: archive format version %d is not supported (this runferry reads up to %d)", name, m.FormatVersion, FormatVersion)
		}
		return fmt.Errorf("%s: %w: not a valid manifest (truncated?): %w", name, ErrDamaged, err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, damaged(err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, damaged(err)
		}
		key, _ := t.(string)
		if !strings.EqualFold(key, "runs") {
			// Any other member is decoded as Decode decodes it (keys
			// matched without regard to case, null leaving the field
			// as it is, unknown keys refused), from an object of its
			// own.
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, damaged(err)
			}
			one, err := json.Marshal(map[string]json.RawMessage{key: raw})
			if err != nil {
				return nil, damaged(err)
			}
			d := json.NewDecoder(bytes.NewReader(one))
			d.DisallowUnknownFields()
			if err := d.Decode(&m); err != nil {
				return nil, damaged(err)
			}
			continue
		}
		// The runs: null, or a list decoded an entry at a time.
		t, err = dec.Token()
		if err != nil {
			return nil, damaged(err)
		}
		if t == nil {
			m.Runs = nil
			continue
		}
		if d, ok := t.(json.Delim); !ok || d != '[' {
			return nil, damaged(fmt.Errorf("runs: %v is not a list", t))
		}
		m.Runs = []RunEntry{}
		for dec.More() {
			var e RunEntry
			if err := dec.Decode(&e); err != nil {
				return nil, damaged(err)
			}
			if spill {
				if *rsp == nil {
					if *rsp, err = newRunSpill(spillDir); err != nil {
						return nil, fmt.Errorf("reading %s: %w", name, err)
					}
				}
				s, err := (*rsp).put(&e)
				if err != nil {
					return nil, fmt.Errorf("reading %s: %w", name, err)
				}
				e = *s
			}
			m.Runs = append(m.Runs, e)
		}
		if err := expectDelim(dec, ']'); err != nil {
			return nil, damaged(err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, damaged(err)
	}
	// Hash what follows the value too (the final newline): the decoder
	// has read part of it already, the rest is read here.
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if m.Format != FormatName {
		return nil, fmt.Errorf("%s: %w: not a runferry archive manifest (format %q)", name, ErrDamaged, m.Format)
	}
	if m.FormatVersion > FormatVersion || m.FormatVersion < 1 {
		return nil, fmt.Errorf("%s: archive format version %d is not supported (this runferry reads up to %d)", name, m.FormatVersion, FormatVersion)
	}
	m.spill = *rsp
	want := m.Checksum
	if hr.canonical(want) {
		return &m, nil
	}
	// Not as encodeManifest writes it (re-indented, fields reordered):
	// verified by encoding what it decodes to, which writeManifest
	// streams, spilled entries and all.
	check := m
	check.Checksum = ""
	var tail tailWriter
	if _, err := writeManifest(&tail, check); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if got := tail.checksum(); got != want {
		return nil, fmt.Errorf("%s: %w: checksum mismatch (the manifest was modified or damaged): computed %s, recorded %s", name, ErrDamaged, got, want)
	}
	return &m, nil
}

// expectDelim reads the next token, which must be the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if got, ok := t.(json.Delim); !ok || got != d {
		return fmt.Errorf("%v where %v was expected", t, d)
	}
	return nil
}

// lagHasher reads r, hashing what it reads but its last keep bytes, which
// it holds back: the manifest's checksum field and end, which
// canonicalChecksum leaves out of the hash (canonical).
type lagHasher struct {
	r    io.Reader
	h    hash.Hash
	keep int
	held []byte
}

func (l *lagHasher) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	l.held = append(l.held, b[:n]...)
	if over := len(l.held) - l.keep; over >= 64<<10 {
		l.h.Write(l.held[:over])
		l.held = append(l.held[:0], l.held[over:]...)
	}
	return n, err
}

// canonical reports what canonicalChecksum reports of the bytes read.
func (l *lagHasher) canonical(want string) bool {
	if len(want) != 2*sha256.Size {
		return false
	}
	tail := checksumTail + want + "\"\n}\n"
	if !bytes.HasSuffix(l.held, []byte(tail)) {
		return false
	}
	h := l.h
	h.Write(l.held[:len(l.held)-len(tail)])
	h.Write([]byte(checksumTail + "\"\n}"))
	return hex.EncodeToString(h.Sum(nil)) == want
}

// tailWriter keeps the last bytes writeManifest writes, which end with
// the checksum it computed.
type tailWriter struct{ b []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append(t.b[:0], t.b[len(t.b)-256:]...)
	}
	return len(p), nil
}

// checksum returns the checksum at the end of what was written.
func (t *tailWriter) checksum() string {
	end := "\"\n}\n"
	b := bytes.TrimSuffix(t.b, []byte(end))
	if len(b) < 2*sha256.Size {
		return ""
	}
	return string(b[len(b)-2*sha256.Size:])
}
