package schema

import (
	"reflect"
	"testing"
	"time"
)

// TestCanonicalInputs: dataset inputs are ordered by content (name, digest,
// ..., then tags) whatever order they came in, their tags sorted, exact
// repeats collapsed; Validate refuses any other order.
func TestCanonicalInputs(t *testing.T) {
	a := DatasetInput{Name: "a", Digest: "2", Tags: []Tag{{"z", "1"}, {"mlflow.data.context", "eval"}}}
	b := DatasetInput{Name: "a", Digest: "2", Tags: []Tag{{"mlflow.data.context", "training"}}}
	c := DatasetInput{Name: "a", Digest: "1", Source: "s"}
	d := DatasetInput{Name: "B"}
	want := []DatasetInput{d, c,
		{Name: "a", Digest: "2", Tags: []Tag{{"mlflow.data.context", "eval"}, {"z", "1"}}}, b}
	for _, order := range [][]DatasetInput{{a, b, c, d}, {d, b, a, c, a}, {c, a, d, b, b}} {
		r := Run{Origin: Ref{"m", "r"}, Experiment: Ref{"m", "e"}, Status: StatusFinished, Start: time.Unix(1, 0).UTC()}
		for _, in := range order {
			in.Tags = append([]Tag(nil), in.Tags...)
			r.Inputs = append(r.Inputs, in)
		}
		r.Canonicalize()
		if !reflect.DeepEqual(r.Inputs, want) {
			t.Fatalf("canonical inputs\n got %+v\nwant %+v", r.Inputs, want)
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		r.Inputs[0], r.Inputs[1] = r.Inputs[1], r.Inputs[0]
		if err := r.Validate(); err == nil {
			t.Fatal("Validate accepted inputs out of order")
		}
	}
}
