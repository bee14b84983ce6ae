package wandbfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/runferry/runferry/internal/pbwire"
)

// inspectLine is one line of Inspect's output.
type inspectLine struct {
	Offset int64  `json:"offset"`
	Kind   string `json:"kind,omitempty"`
	Num    int64  `json:"num,omitempty"`
	Record any    `json:"record,omitempty"`
	Damage string `json:"damage,omitempty"`
	// Truncated marks damage caused by the file ending early.
	Truncated bool `json:"truncated,omitempty"`
}

// Inspect reads the `.wandb` file r (named name in messages) and writes one
// JSON object per line to w, in file order:
//
//	{"offset":N,"kind":"history","num":M,"record":{...decoded fields...}}
//	{"offset":N,"damage":"reason"}               (framing damage)
//	{"offset":N,"kind":"run","damage":"reason"}  (a record that does not decode)
//
// offset is the file offset of the record's first chunk (or of the damage),
// num the writer's sequence number (omitted when zero), and record the
// decoded content of the kind (the JSON form of History, Run, ...; omitted
// for kinds without decoded content). Framing damage may also carry
// "truncated":true. Strings that are not valid UTF-8 are written with U+FFFD
// in place of the bad bytes (encoding/json's rule).
//
// Damage does not make Inspect fail: it returns the number of damage lines
// written, and an error only for a file that is not a .wandb file, a read
// error, or a write error.
func Inspect(w io.Writer, r io.Reader, name string) (damaged int, err error) {
	rd, err := NewReader(r, name)
	if err != nil {
		return 0, err
	}
	out := bufio.NewWriter(w)
	reported := 0
	flushDamage := func() error {
		for _, d := range rd.Damage()[reported:] {
			if err := writeLine(out, inspectLine{Offset: d.Offset, Damage: d.Reason, Truncated: d.Truncated}); err != nil {
				return err
			}
		}
		reported = len(rd.Damage())
		return nil
	}
	decodeDamage := 0
	for {
		payload, offset, err := rd.Next()
		if ferr := flushDamage(); ferr != nil {
			return reported + decodeDamage, ferr
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return reported + decodeDamage, err
		}
		line := inspectRecord(payload, offset)
		if line.Damage != "" {
			decodeDamage++
		}
		if err := writeLine(out, line); err != nil {
			return reported + decodeDamage, err
		}
	}
	return reported + decodeDamage, out.Flush()
}

// inspectRecord decodes one record into its output line.
func inspectRecord(payload []byte, offset int64) inspectLine {
	rec, err := Decode(payload)
	if err != nil {
		kind := ""
		if k, ok := peekKind(payload); ok {
			kind = k.String()
		}
		return inspectLine{Offset: offset, Kind: kind, Damage: "record does not decode: " + err.Error()}
	}
	return inspectLine{Offset: offset, Kind: rec.Kind.String(), Num: rec.Num, Record: rec.Content()}
}

// writeLine writes one line as JSON. A record that JSON cannot represent
// (a NaN float) is written as damage instead.
func writeLine(w io.Writer, line inspectLine) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(line); err != nil {
		buf.Reset()
		damage := inspectLine{Offset: line.Offset, Kind: line.Kind, Damage: fmt.Sprintf("record not representable as JSON: %v", err)}
		if err := enc.Encode(damage); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// peekKind finds the record type of a payload that failed to decode, by
// looking for the first known record-type field number.
func peekKind(payload []byte) (Kind, bool) {
	var found Kind
	_ = pbwire.Walk(payload, func(f pbwire.Field) error {
		if k := Kind(f.Num); k.Known() && k != KindNone && found == KindNone {
			found = k
		}
		return nil
	})
	return found, found != KindNone
}
