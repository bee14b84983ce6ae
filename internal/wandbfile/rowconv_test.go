package wandbfile

import (
	"math"
	"testing"

	"github.com/runferry/runferry/schema"
)

// TestConvertValuesEncodings checks that the legacy encoding (whole dicts in
// one item) and wandb-core's (one nested_key item per leaf) give the same
// points and rich values.
func TestConvertValuesEncodings(t *testing.T) {
	legacy := []Item{
		{Key: "loss", ValueJSON: "0.5"},
		{Key: "val", ValueJSON: `{"acc": 0.75, "deep": {"x": NaN}}`},
		{Key: "img", ValueJSON: `{"_type": "image-file", "path": "media/images/img_3_ab.png", "width": 8, "masks": {"m": {"_type": "mask", "path": "media/images/mask/m.png"}}}`},
		{Key: "ok", ValueJSON: "true"},
		{Key: "words", ValueJSON: `["a", "b"]`},
		{Key: "_step", ValueJSON: "3"}, {Key: "_timestamp", ValueJSON: "1700000000.1234"},
		{Key: "_runtime", ValueJSON: "2.5"}, {Key: "_wandb", ValueJSON: `{"runtime": 2}`},
	}
	core := []Item{
		{NestedKey: []string{"val", "deep", "x"}, ValueJSON: "NaN"},
		{NestedKey: []string{"img", "masks", "m", "path"}, ValueJSON: `"media/images/mask/m.png"`},
		{NestedKey: []string{"img", "_type"}, ValueJSON: `"image-file"`},
		{NestedKey: []string{"_timestamp"}, ValueJSON: "1.7000000001234e+09"},
		{NestedKey: []string{"loss"}, ValueJSON: "0.5"},
		{NestedKey: []string{"img", "path"}, ValueJSON: `"media/images/img_3_ab.png"`},
		{NestedKey: []string{"val", "acc"}, ValueJSON: "0.75"},
		{NestedKey: []string{"ok"}, ValueJSON: "true"},
		{NestedKey: []string{"img", "masks", "m", "_type"}, ValueJSON: `"mask"`},
		{NestedKey: []string{"words"}, ValueJSON: `["a","b"]`},
		{NestedKey: []string{"img", "width"}, ValueJSON: "8"},
		{NestedKey: []string{"_step"}, ValueJSON: "3"},
		{NestedKey: []string{"_runtime"}, ValueJSON: "2.5"},
	}
	want := RowValues{Step: 3, HasStep: true, Time: 1700000000123,
		Rich: []schema.RichValue{
			{Key: "img", Type: "image-file",
				JSON:  `{"_type":"image-file","masks":{"m":{"_type":"mask","path":"media/images/mask/m.png"}},"path":"media/images/img_3_ab.png","width":8}`,
				Files: []string{"media/images/img_3_ab.png", "media/images/mask/m.png"}},
			{Key: "words", Type: "list", JSON: `["a","b"]`},
		}}
	wantPoints := []schema.Metric{{Key: "loss", Value: 0.5}, {Key: "ok", Value: 1}, {Key: "val/acc", Value: 0.75}, {Key: "val/deep/x", Value: math.NaN()}}
	for name, items := range map[string][]Item{"legacy": legacy, "core": core} {
		got, points := ConvertValues(ParseItems(items), nil)
		if !sameValues(got, want) || !samePoints(points, wantPoints) {
			t.Errorf("%s encoding:\n got  %+v %v\n want %+v %v", name, got, points, want, wantPoints)
		}
		// The converter gives the same, through a Row.
		var row Row
		row.SetHistory(&History{Items: items})
		var conv RowConverter
		if got := conv.Convert(&row, true); !sameValues(got, want) || !samePoints(conv.AppendPoints(nil, 0, 0), wantPoints) {
			t.Errorf("%s encoding, RowConverter:\n got  %+v\n want %+v", name, got, want)
		}
	}
}
