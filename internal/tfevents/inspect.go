package tfevents

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"math"
)

// inspectValue is one summary value in Inspect's output.
type inspectValue struct {
	Tag    string `json:"tag"`
	Kind   string `json:"kind"`
	Plugin string `json:"plugin,omitempty"`
	// Value is the simple_value or a numeric tensor's numbers (non-finite
	// numbers as "NaN", "Infinity", "-Infinity"), or a string tensor's
	// strings; other kinds give their byte size in Bytes.
	Value any     `json:"value,omitempty"`
	Shape []int64 `json:"shape,omitempty"`
	Bytes int     `json:"bytes,omitempty"`
	Error string  `json:"error,omitempty"`
}

// inspectLine is one line of Inspect's output.
type inspectLine struct {
	Offset        int64          `json:"offset"`
	WallTime      float64        `json:"wall_time,omitempty"`
	Step          int64          `json:"step,omitempty"`
	FileVersion   string         `json:"file_version,omitempty"`
	Writer        string         `json:"writer,omitempty"`
	SessionStatus int            `json:"session_status,omitempty"`
	Values        []inspectValue `json:"values,omitempty"`
	Other         []string       `json:"other,omitempty"`
	Damage        string         `json:"damage,omitempty"`
	Truncated     bool           `json:"truncated,omitempty"`
}

// Inspect reads the event file r (named name in messages) and writes one
// JSON object per record to w, in file order:
//
//	{"offset":N,"wall_time":T,"step":S,"values":[{"tag":..,"kind":..,"plugin":..,"value":..}]}
//	{"offset":N,"damage":"reason"}               (framing damage, "truncated":true at a cut tail)
//	{"offset":N,"damage":"undecodable event: ..."}
//
// Damage does not make Inspect fail: it returns the number of damage lines
// written, and an error only for a read or write error.
func Inspect(w io.Writer, r io.Reader, name string) (damaged int, err error) {
	rd := NewReader(r, name)
	out := bufio.NewWriter(w)
	enc := json.NewEncoder(out)
	reported := 0
	flushDamage := func() error {
		for _, d := range rd.Damage()[reported:] {
			damaged++
			if err := enc.Encode(inspectLine{Offset: d.Offset, Damage: d.Reason, Truncated: d.Truncated}); err != nil {
				return err
			}
		}
		reported = len(rd.Damage())
		return nil
	}
	var ev Event
	for {
		data, off, err := rd.Next()
		if ferr := flushDamage(); ferr != nil {
			return damaged, ferr
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return damaged, err
		}
		line := inspectLine{Offset: off}
		if err := DecodeEvent(data, &ev); err != nil {
			damaged++
			line.Damage = "undecodable event: " + err.Error()
		} else {
			line.WallTime, line.Step, line.FileVersion, line.Writer = ev.WallTime, ev.Step, ev.FileVersion, ev.Writer
			line.SessionStatus, line.Other = ev.SessionStatus, ev.Other
			for _, v := range ev.Values {
				line.Values = append(line.Values, inspectOf(v))
			}
		}
		if err := enc.Encode(line); err != nil {
			return damaged, err
		}
	}
	return damaged, out.Flush()
}

func inspectOf(v Value) inspectValue {
	iv := inspectValue{Tag: string(v.Tag), Kind: v.Kind.String(), Plugin: string(v.Plugin)}
	switch v.Kind {
	case KindSimple:
		iv.Value = jsonFloat(float64(v.Simple))
	case KindTensor:
		t, err := DecodeTensor(v.Raw)
		if err != nil {
			iv.Error, iv.Bytes = err.Error(), len(v.Raw)
			break
		}
		iv.Shape = t.Shape
		if t.DType == DTString {
			s := make([]string, len(t.Strings))
			for i, b := range t.Strings {
				s[i] = string(b)
			}
			iv.Value = s
			break
		}
		nums := make([]any, len(t.Numbers))
		for i, f := range t.Numbers {
			nums[i] = jsonFloat(f)
		}
		iv.Value = nums
	default:
		iv.Bytes = len(v.Raw)
	}
	return iv
}

// jsonFloat is f, or its name when JSON has no number for it.
func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}
