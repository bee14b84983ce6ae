package wandbfile

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"
)

func TestParseValueJSON(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"0", int64(0)},
		{"-0", int64(0)},
		{"861", int64(861)},
		{"-42", int64(-42)},
		{"9223372036854775807", int64(math.MaxInt64)},
		{"-9223372036854775808", int64(math.MinInt64)},
		{"9223372036854775808", json.Number("9223372036854775808")},
		{"123456789012345678901234567890", json.Number("123456789012345678901234567890")},
		{"0.5", 0.5},
		{"1.7725887636812153e+09", 1.7725887636812153e+09},
		{"1E2", 100.0},
		{"-0.0", math.Copysign(0, -1)},
		{"1e400", math.Inf(1)},
		{"Infinity", math.Inf(1)},
		{"-Infinity", math.Inf(-1)},
		{"  true ", true},
		{"false", false},
		{"null", nil},
		{`"héllo \"x\" \\ \/ \n\t\u00e9\ud83d\ude00"`, "héllo \"x\" \\ / \n\té😀"},
		{`"\ud83d"`, "\uFFFD"},
		{`"\ud83dx"`, "\uFFFDx"},
		{"[]", []any{}},
		{"{}", map[string]any{}},
		{`[1, 2.5, "a", null, [true]]`, []any{int64(1), 2.5, "a", nil, []any{true}}},
		{`{"sent": 23693, "recv": 34059, "x": {"y": -Infinity}}`, map[string]any{
			"sent": int64(23693), "recv": int64(34059), "x": map[string]any{"y": math.Inf(-1)}}},
		{`{"a": 1, "a": 2}`, map[string]any{"a": int64(2)}},
		{`{"_type": "histogram", "values": [1, 2], "bins": [0.0, 0.5, 1.0]}`, map[string]any{
			"_type": "histogram", "values": []any{int64(1), int64(2)}, "bins": []any{0.0, 0.5, 1.0}}},
	}
	for _, tt := range tests {
		got, err := ParseValueJSON(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.in, got, tt.want)
		}
		if f, ok := tt.want.(float64); ok && math.Signbit(f) != math.Signbit(got.(float64)) {
			t.Errorf("%s: sign of zero lost", tt.in)
		}
	}
	got, err := ParseValueJSON("NaN")
	if f, ok := got.(float64); err != nil || !ok || !math.IsNaN(f) {
		t.Errorf("NaN: %#v, %v", got, err)
	}
	// Invalid UTF-8 is kept byte for byte.
	if got, err := ParseValueJSON("\"a\xffb\""); err != nil || got != "a\xffb" {
		t.Errorf("invalid UTF-8: %q, %v", got, err)
	}
}

func TestParseValueJSONErrors(t *testing.T) {
	for _, in := range []string{
		"", " ", "nan", "inf", "-", "+1", "01", "1.", ".5", "1e", "1e+", "--1", "-NaN",
		"[1,]", "[1 2]", "{1:2}", `{"a" 1}`, `{"a":1,}`, `{"a":1`, "[", `"abc`, `"\x"`, `"\u12"`,
		"1 2", "truex", "nul", "[Infinityx]", `"\`,
	} {
		if v, err := ParseValueJSON(in); err == nil {
			t.Errorf("%q: accepted as %#v", in, v)
		}
	}
	deep := bytes.Repeat([]byte("["), maxJSONDepth+1)
	if _, err := ParseValueJSON(string(deep)); err == nil {
		t.Errorf("nesting beyond the limit accepted")
	}
}

// TestParseValueJSONSummaryFile parses a real wandb-summary.json that holds a
// bare NaN (BoocampMonster sample, SDK 0.13.5).
func TestParseValueJSONSummaryFile(t *testing.T) {
	dir := requireSamples(t)
	matches, _ := filepath.Glob(filepath.Join(dir, "BoocampMonster__korean-relation-extraction/wandb/*/files/wandb-summary.json"))
	if len(matches) == 0 {
		t.Skip("BoocampMonster wandb-summary.json not found")
	}
	sawNaN := false
	for _, path := range matches {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := ParseValueJSON(string(data))
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(filepath.Dir(filepath.Dir(path))), err)
		}
		for _, val := range v.(map[string]any) {
			if f, ok := val.(float64); ok && math.IsNaN(f) {
				sawNaN = true
			}
		}
	}
	if !sawNaN {
		t.Errorf("no NaN found; the samples README says one summary holds a bare NaN")
	}
}

// normalizeNumbers converts the numbers of a ParseValueJSON result to
// float64, to compare with encoding/json's result.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case json.Number:
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalizeNumbers(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeNumbers(e)
		}
		return out
	}
	return v
}

// FuzzParseValueJSON checks ParseValueJSON against encoding/json on
// standard JSON (valid UTF-8, in range): same acceptance, same value.
func FuzzParseValueJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true]}`, "NaN", "-Infinity", `"\ud83d\ude00"`, "1e400", "12345678901234567890", `{"a":1,"a":2}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseValueJSON(s)
		if !utf8.ValidString(s) {
			return
		}
		var want any
		stdErr := json.Unmarshal([]byte(s), &want)
		if stdErr == nil && err != nil {
			t.Fatalf("%q: rejected standard JSON: %v", s, err)
		}
		if stdErr != nil || err != nil {
			return // extended tokens or errors: no reference to compare with
		}
		if !reflect.DeepEqual(normalizeNumbers(got), want) {
			t.Fatalf("%q: got %#v, encoding/json %#v", s, got, want)
		}
	})
}
