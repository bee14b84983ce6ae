package mlflowconv

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

func TestValidKey(t *testing.T) {
	long := strings.Repeat("k", mlflowapi.MaxKeyLength)
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"loss", true},
		{"train/loss", true},
		{"a.b-c_d e:f", true},
		{"größe/ß", true}, // letters outside ASCII are letters
		{"数字/7", true},
		{long, true},
		{long + "k", false},
		{strings.Repeat("é", mlflowapi.MaxKeyLength), true}, // counted in code points, not bytes
		{"", false},
		{"a+b", false},
		{"a\tb", false},
		{"a,b", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"a/./b", false},
		{"a/../b", false},
		{"../a", false},
		{"a/..b", true}, // only whole segments . and .. are normalised away
		{"...", true},
	} {
		if got := ValidKey(tc.key); got != tc.want {
			t.Errorf("ValidKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestMapKey(t *testing.T) {
	for _, tc := range []struct {
		key     string
		changed bool
		prefix  string // the mapped key before its "_" + 8 hex digits
	}{
		{"loss", false, ""},
		{"train/acc", false, ""},
		{"a+b", true, "a_b"},
		{"a//b", true, "a__b"}, // a bad path: every slash of it becomes "_"
		{"runferry.origin", true, "_runferry.origin"},
		{"runferry.x+y", true, "_runferry.x_y"},
		{"runferryx", false, ""},
		{"épsilon=1", true, "épsilon_1"},
		{"", true, ""},
	} {
		got, changed := MapKey(tc.key)
		if changed != tc.changed {
			t.Errorf("MapKey(%q) changed = %v, want %v (got %q)", tc.key, changed, tc.changed, got)
			continue
		}
		if !changed {
			if got != tc.key {
				t.Errorf("MapKey(%q) = %q, want it unchanged", tc.key, got)
			}
			continue
		}
		if !strings.HasPrefix(got, tc.prefix+"_") || len(got) != len(tc.prefix)+9 {
			t.Errorf("MapKey(%q) = %q, want %q + \"_\" + 8 hex digits", tc.key, got, tc.prefix)
		}
		if strings.Trim(got[len(got)-8:], "0123456789abcdef") != "" {
			t.Errorf("MapKey(%q) = %q: suffix is not hex", tc.key, got)
		}
		if tc.key != "" && !ValidKey(got) {
			t.Errorf("MapKey(%q) = %q, which MLflow rejects", tc.key, got)
		}
		if again, _ := MapKey(tc.key); again != got {
			t.Errorf("MapKey(%q) is not deterministic: %q then %q", tc.key, got, again)
		}
	}
}

func TestMapKeyDistinctAndBounded(t *testing.T) {
	// keys that differ only in rejected characters map to different keys
	a, _ := MapKey("a+b")
	b, _ := MapKey("a=b")
	if a == b {
		t.Errorf("MapKey(a+b) and MapKey(a=b) are both %q", a)
	}
	long := strings.Repeat("x", mlflowapi.MaxKeyLength+40)
	got, changed := MapKey(long)
	if !changed || utf8.RuneCountInString(got) != mlflowapi.MaxKeyLength || !ValidKey(got) {
		t.Errorf("MapKey(%d x's) = %d runes, changed %v, valid %v; want %d runes, valid", len(long),
			utf8.RuneCountInString(got), changed, ValidKey(got), mlflowapi.MaxKeyLength)
	}
	wide := strings.Repeat("é", mlflowapi.MaxKeyLength+1)
	if got, _ := MapKey(wide); utf8.RuneCountInString(got) != mlflowapi.MaxKeyLength || !utf8.ValidString(got) {
		t.Errorf("MapKey of %d é's = %d runes (valid UTF-8 %v), want %d", mlflowapi.MaxKeyLength+1,
			utf8.RuneCountInString(got), utf8.ValidString(got), mlflowapi.MaxKeyLength)
	}
}

func TestRecordKey(t *testing.T) {
	m := map[string]string{}
	if k := RecordKey("loss", m); k != "loss" || len(m) != 0 {
		t.Errorf("RecordKey(loss) = %q, map %v; want loss and nothing recorded", k, m)
	}
	k := RecordKey("a+b", m)
	if m[k] != "a+b" || len(m) != 1 {
		t.Errorf("RecordKey(a+b) = %q, map %v; want the mapping recorded", k, m)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
		cut  bool
	}{
		{"abc", 3, "abc", false},
		{"abcd", 3, "abc", true},
		{"ééé", 2, "éé", true}, // code points, never half a character
		{"", 0, "", false},
	} {
		got, cut := Truncate(tc.in, tc.n)
		if got != tc.want || cut != tc.cut {
			t.Errorf("Truncate(%q, %d) = %q, %v; want %q, %v", tc.in, tc.n, got, cut, tc.want, tc.cut)
		}
	}
}

func TestFloatJSON(t *testing.T) {
	negZero := math.Copysign(0, -1)
	for _, tc := range []struct {
		v    float64
		wire string
	}{
		{1.5, `1.5`},
		{0, `0`},
		{negZero, `-0`},
		{-2, `-2`},
		{1e300, `1e+300`},
		{math.MaxFloat64, `1.7976931348623157e+308`},
		{math.SmallestNonzeroFloat64, `5e-324`},
		{math.NaN(), `"NaN"`},
		{math.Inf(1), `"Infinity"`},
		{math.Inf(-1), `"-Infinity"`},
	} {
		b, err := json.Marshal(mlflowapi.Metric{Key: "k", Value: mlflowapi.Float(tc.v)})
		if err != nil {
			t.Fatalf("marshal %v: %v", tc.v, err)
		}
		if want := `{"key":"k","value":` + tc.wire + `,"timestamp":0,"step":0}`; string(b) != want {
			t.Errorf("marshal %v = %s, want %s", tc.v, b, want)
		}
		var back mlflowapi.Metric
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if got := float64(back.Value); math.Float64bits(got) != math.Float64bits(tc.v) && !(math.IsNaN(got) && math.IsNaN(tc.v)) {
			t.Errorf("round trip of %v gave %v", tc.v, got)
		}
	}
}

func TestFloatUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		bad  bool
	}{
		{`3`, 3, false},
		{`"3.25"`, 3.25, false}, // protobuf JSON may quote numbers
		{`"1e3"`, 1000, false},
		{`"Infinity"`, math.Inf(1), false},
		{`"-Infinity"`, math.Inf(-1), false},
		{`"inf"`, math.Inf(1), false}, // ParseFloat's spelling is accepted too
		{`"abc"`, 0, true},
		{`true`, 0, true},
		{`"NaN`, 0, true},
	} {
		var f mlflowapi.Float
		err := json.Unmarshal([]byte(tc.in), &f)
		if (err != nil) != tc.bad {
			t.Errorf("unmarshal %s: err %v, want error %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && float64(f) != tc.want {
			t.Errorf("unmarshal %s = %v, want %v", tc.in, f, tc.want)
		}
	}
	var f mlflowapi.Float
	if err := json.Unmarshal([]byte(`"NaN"`), &f); err != nil || !math.IsNaN(float64(f)) {
		t.Errorf(`unmarshal "NaN" = %v, %v; want NaN`, f, err)
	}
}

// TestDetailsTag: W&B's facts a user does not filter by are one JSON tag
// (sorted keys, no HTML escaping), the W&B tags are not listed twice; the
// sidecar version 1 mapping is unchanged.
func TestDetailsTag(t *testing.T) {
	r := schema.Run{Labels: []string{"b", "a"}, Group: "g", Tags: []schema.Tag{
		{Key: "owner", Value: "me"}, {Key: "wandb.cpu_count", Value: "8"}, {Key: "wandb.entity", Value: "acme"},
		{Key: "wandb.os", Value: "Linux<6>"}, {Key: "wandb.project", Value: "p"}, {Key: "wandb.run_id", Value: "r1"},
		{Key: "wandb.step_metric.acc", Value: "epoch"}, {Key: "wandb.summary.x", Value: "user's own"}}}
	tags := func(version int) map[string]string {
		cov := Coverage{MetricKeys: map[string]string{}, ParamKeys: map[string]string{}, TagKeys: map[string]string{}}
		_, ts, err := RunEntitiesOf(r, &cov, version)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tg := range ts {
			m[tg.Key] = tg.Value
		}
		return m
	}
	got := tags(SidecarVersion)
	want := map[string]string{"owner": "me", "wandb.entity": "acme", "wandb.project": "p", "wandb.run_id": "r1",
		"wandb.summary.x": "user's own", TagGroup: "g", "wandb.tag.a": "true", "wandb.tag.b": "true",
		TagStepMetric: got[TagStepMetric], TagDetails: `{"cpu_count":"8","os":"Linux<6>"}`}
	if !reflect.DeepEqual(got, want) || got[TagStepMetric] == "" {
		t.Errorf("version %d tags:\n%v\nwant\n%v", SidecarVersion, got, want)
	}
	old := tags(1)
	if old["wandb.os"] != "Linux<6>" || old["wandb.cpu_count"] != "8" || old[TagLabels] != `["b","a"]` || old[TagDetails] != "" {
		t.Errorf("version 1 tags: %v", old)
	}
}

// TestFlattenConfigCollidingKeysInOneOrder: config keys that flatten alike
// (a nested {"a":{"b":..}} and a dotted "a.b") are given in one order every
// time, so the param RunEntities writes for "a.b" is always the same one
// and the other is always the one counted in ConfigNotParams. Before, Go's
// map order decided (about 1 call in 10 gave the dotted key first).
func TestFlattenConfigCollidingKeysInOneOrder(t *testing.T) {
	config := json.RawMessage(`{"a.b":2,"z":{"y":{"x":1}},"a":{"b":1,"c":{"d":true}},"z.y":{"x":"s"},"z.y.x":null}`)
	want := []schema.Param{
		{Key: "a.b", Value: "1"}, {Key: "a.b", Value: "2"}, {Key: "a.c.d", Value: "true"},
		{Key: "z.y.x", Value: "1"}, {Key: "z.y.x", Value: "s"}, {Key: "z.y.x", Value: "null"},
	}
	for i := 0; i < 200; i++ {
		got, err := FlattenConfig(config)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("call %d: got %v, want %v", i, got, want)
		}
		cov := Coverage{ParamKeys: map[string]string{}, TagKeys: map[string]string{}}
		params, _, err := RunEntities(schema.Run{Config: config}, &cov)
		if err != nil {
			t.Fatal(err)
		}
		wantParams := []mlflowapi.Param{{Key: "a.b", Value: "1"}, {Key: "a.c.d", Value: "true"}, {Key: "z.y.x", Value: "1"}}
		if !reflect.DeepEqual(params, wantParams) || !reflect.DeepEqual(cov.ConfigNotParams, []string{"a.b", "z.y.x", "z.y.x"}) {
			t.Fatalf("call %d: params %v, not params %v", i, params, cov.ConfigNotParams)
		}
	}
}

// TestSourceTypeWithProgram: a run with a program gets mlflow.source.type
// LOCAL beside mlflow.source.name, as MLflow's client gives every run it
// starts outside Databricks (MLflow's UI shows its source icon only then);
// a run's own mlflow.source.type (an MLflow run from a notebook) is kept,
// not written twice; a run without a program gets none. Failed before the
// tag was derived (no mlflow.source.type at all).
func TestSourceTypeWithProgram(t *testing.T) {
	tags := func(r schema.Run) map[string][]string {
		cov := Coverage{MetricKeys: map[string]string{}, ParamKeys: map[string]string{}, TagKeys: map[string]string{}}
		_, ts, err := RunEntities(r, &cov)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]string{}
		for _, tg := range ts {
			m[tg.Key] = append(m[tg.Key], tg.Value)
		}
		return m
	}
	cases := []struct {
		name string
		run  schema.Run
		want []string
	}{
		{"script", schema.Run{Program: "train.py"}, []string{SourceTypeLocal}},
		{"no program", schema.Run{Notes: "n"}, nil},
		{"own type", schema.Run{Program: "/Users/me/nb", Tags: []schema.Tag{{Key: mlflowapi.TagSourceType, Value: "NOTEBOOK"}}}, []string{"NOTEBOOK"}},
	}
	for _, c := range cases {
		got := tags(c.run)
		if !reflect.DeepEqual(got[mlflowapi.TagSourceType], c.want) {
			t.Errorf("%s: %s = %q, want %q (all tags %v)", c.name, mlflowapi.TagSourceType, got[mlflowapi.TagSourceType], c.want, got)
		}
	}
}
