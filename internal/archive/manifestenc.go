package archive

import (
	"encoding/json"
	"strconv"
	"strings"
)

// appendManifestJSON appends m as json.MarshalIndent(m, "", " ") encodes
// it, byte for byte, without reflection: the manifest lists every run
// with its files, and encoding/json spends most of a publish's time on
// those entries. TestAppendManifestJSONMatchesEncodingJSON holds the two
// to the same bytes, for every field and awkward strings.
func appendManifestJSON(b []byte, m *Manifest) ([]byte, error) {
	return appendManifestJSONTo(b, m, nil)
}

// appendManifestJSONTo is appendManifestJSON handing what it encoded to
// out, when not nil, whenever it holds manifestPart bytes or more after a
// run's entry (which out may keep no longer than the call): the list of
// runs, the bulk of a manifest, is then never held whole. It returns what
// it has not handed to out, which holds at least the checksum field.
func appendManifestJSONTo(b []byte, m *Manifest, out func([]byte) error) ([]byte, error) {
	created, err := m.Created.MarshalJSON()
	if err != nil {
		return nil, err
	}
	e := jsonIndenter{b: b}
	e.open('{')
	e.str("format", m.Format)
	e.num("format_version", int64(m.FormatVersion))
	e.str("runferry_version", m.RunferryVersion)
	e.str("source", m.Source)
	e.num("snapshot", m.Snapshot)
	e.key("created")
	e.b = append(e.b, created...)
	e.key("experiments")
	appendList(&e, m.Experiments, func(x *ExperimentEntry) {
		e.open('{')
		e.str("origin", x.Origin)
		e.num("snapshot", x.Snapshot)
		e.str("digest", x.Digest)
		if x.TracesDigest != "" {
			e.str("traces_digest", x.TracesDigest)
		}
		e.key("files")
		appendFiles(&e, x.Files)
		e.close('}')
	})
	e.key("runs")
	var spillErr error
	appendList(&e, m.Runs, func(x *RunEntry) {
		defer func() {
			if out != nil && len(e.b) >= manifestPart && spillErr == nil {
				spillErr = out(e.b)
				e.b = e.b[:0]
			}
		}()
		if x.spilled == nil {
			appendRunEntry(&e, x)
			return
		}
		// The entry as appendRunEntry wrote it at this place, when it
		// was spilled (runSpill).
		var err error
		if e.b, err = x.spilled.appendTo(e.b); err != nil && spillErr == nil {
			spillErr = err
		}
		e.first = false
	})
	if spillErr != nil {
		return nil, spillErr
	}
	if len(m.Models) > 0 {
		e.key("models")
		appendList(&e, m.Models, func(x *ModelEntry) {
			e.open('{')
			e.str("origin", x.Origin)
			e.str("name", x.Name)
			e.num("snapshot", x.Snapshot)
			e.str("digest", x.Digest)
			e.key("files")
			appendFiles(&e, x.Files)
			e.close('}')
		})
	}
	e.str("checksum", m.Checksum)
	e.close('}')
	return e.b, nil
}

// manifestPart is how many bytes of an encoded manifest
// appendManifestJSONTo holds before it hands them on (a variable for
// tests).
var manifestPart = 256 << 10

// appendRunEntry appends a run's entry, from its '{' to its '}'.
func appendRunEntry(e *jsonIndenter, x *RunEntry) {
	e.open('{')
	e.str("origin", x.Origin)
	e.str("experiment", x.Experiment)
	e.num("snapshot", x.Snapshot)
	e.str("fingerprint", x.Fingerprint)
	if x.Mark != "" {
		e.str("mark", x.Mark)
	}
	if x.Cursors != "" {
		e.str("cursors", x.Cursors)
	}
	e.num("points", x.Points)
	e.key("files")
	appendFiles(e, x.Files)
	if len(x.Blobs) > 0 {
		e.key("blobs")
		appendList(e, x.Blobs, func(x *BlobEntry) {
			e.open('{')
			e.str("sha256", x.SHA256)
			e.num("bytes", x.Bytes)
			e.close('}')
		})
	}
	e.close('}')
}

func appendFiles(e *jsonIndenter, files []FileEntry) {
	appendList(e, files, func(x *FileEntry) {
		e.open('{')
		e.str("path", x.Path)
		e.str("table", x.Table)
		e.num("rows", x.Rows)
		e.num("bytes", x.Bytes)
		e.str("sha256", x.SHA256)
		e.close('}')
	})
}

// appendList appends a slice as encoding/json does: null when nil, []
// when empty, else one element a line.
func appendList[T any](e *jsonIndenter, xs []T, each func(*T)) {
	switch {
	case xs == nil:
		e.b = append(e.b, "null"...)
		return
	case len(xs) == 0:
		e.b = append(e.b, "[]"...)
		return
	}
	e.open('[')
	for i := range xs {
		e.elem()
		each(&xs[i])
	}
	e.close(']')
}

// jsonIndenter writes JSON indented by one space a level, as
// json.MarshalIndent(v, "", " ") does.
type jsonIndenter struct {
	b     []byte
	depth int
	first bool // no element written yet at this level
}

func (e *jsonIndenter) newline() {
	e.b = append(e.b, '\n')
	for range e.depth {
		e.b = append(e.b, ' ')
	}
}

func (e *jsonIndenter) open(c byte) {
	e.b = append(e.b, c)
	e.depth++
	e.first = true
}

func (e *jsonIndenter) close(c byte) {
	e.depth--
	e.newline()
	e.b = append(e.b, c)
	e.first = false
}

// elem starts an array element or an object member.
func (e *jsonIndenter) elem() {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
	e.newline()
}

func (e *jsonIndenter) key(k string) {
	e.elem()
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, `": `...)
}

func (e *jsonIndenter) str(k, v string) {
	e.key(k)
	e.b = appendJSONString(e.b, v)
}

func (e *jsonIndenter) num(k string, v int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, v, 10)
}

// appendJSONString appends s quoted as encoding/json quotes it: plain
// printable ASCII as it is, anything else (quotes, backslashes, control
// characters, <, >, &, non-ASCII) through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	if strings.IndexFunc(s, func(r rune) bool {
		return r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&'
	}) < 0 {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}
