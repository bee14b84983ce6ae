package tensorboard_test

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/tfevents"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/tensorboard"
	"google.golang.org/protobuf/encoding/protowire"
)

// scalarEvent is an Event holding one simple_value.
func scalarEvent(tag string, step int64, wall float64, v float32) []byte {
	var val, sum, ev []byte
	val = protowire.AppendTag(val, 1, protowire.BytesType)
	val = protowire.AppendString(val, tag)
	val = protowire.AppendTag(val, 2, protowire.Fixed32Type)
	val = protowire.AppendFixed32(val, math.Float32bits(v))
	sum = protowire.AppendTag(sum, 1, protowire.BytesType)
	sum = protowire.AppendBytes(sum, val)
	ev = protowire.AppendTag(ev, 1, protowire.Fixed64Type)
	ev = binary.LittleEndian.AppendUint64(ev, math.Float64bits(wall))
	ev = protowire.AppendTag(ev, 2, protowire.VarintType)
	ev = protowire.AppendVarint(ev, uint64(step))
	ev = protowire.AppendTag(ev, 5, protowire.BytesType)
	return protowire.AppendBytes(ev, sum)
}

func writeEvents(t *testing.T, path string, events ...[]byte) {
	t.Helper()
	var file []byte
	for _, e := range events {
		file = tfevents.AppendRecord(file, e)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStepsGoingBack: a restart that logs lower steps again keeps each
// key's steps non-decreasing by dropping the lower points, and counts
// them; the experiment option names the experiment; a root folder named
// train belongs to no run above it.
func TestStepsGoingBack(t *testing.T) {
	root := filepath.Join(t.TempDir(), "train")
	writeEvents(t, filepath.Join(root, "events.out.tfevents.1"),
		scalarEvent("loss", 0, 100, 3), scalarEvent("loss", 1, 101, 2), scalarEvent("loss", 2, 102, 1),
		scalarEvent("loss", 1, 103, 2.5), scalarEvent("acc", 0, 103, 0.5), scalarEvent("loss", 3, 104, 0.5))
	loc, err := location.Parse("tensorboard:"+root+"?experiment=mnist", func(string) (location.Kind, bool) { return location.PathKind, true })
	if err != nil {
		t.Fatal(err)
	}
	src, err := tensorboard.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Experiments) != 1 || d.Experiments[0].Name != "mnist" || len(d.Runs) != 1 || d.Runs[0].Run.Name != "train" {
		t.Fatalf("experiments %+v, runs %d", d.Experiments, len(d.Runs))
	}
	want := []schema.Metric{{Key: "loss", Value: 3, Step: 0, Time: 100000}, {Key: "loss", Value: 2, Step: 1, Time: 101000},
		{Key: "loss", Value: 1, Step: 2, Time: 102000}, {Key: "acc", Value: 0.5, Step: 0, Time: 103000}, {Key: "loss", Value: 0.5, Step: 3, Time: 104000}}
	if !reflect.DeepEqual(d.Runs[0].Metrics, want) {
		t.Fatalf("metrics %v, want %v", d.Runs[0].Metrics, want)
	}
	r := d.Runs[0].Run
	if r.Start.UnixMilli() != 100000 || r.End.UnixMilli() != 104000 || r.Status != schema.StatusFinished {
		t.Errorf("run %+v", r)
	}
	got := src.(sources.Omitter).Omitted(context.Background())
	if want := map[string]int64{"tensorboard metric points whose step went below an earlier point of their key": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("omitted %v, want %v", got, want)
	}
}

// TestBadLocations: a missing folder, a file, a tree without event files
// and an unknown option are errors that say so.
func TestBadLocations(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	for raw, want := range map[string]string{
		"tensorboard:" + filepath.Join(dir, "nope"): "does not exist",
		"tensorboard:" + file:                       "is not a folder",
		"tensorboard:" + empty:                      "no event files (events.out.tfevents.*) under " + empty,
		"tensorboard:" + empty + "?exp=x":           `unknown option "exp"`,
	} {
		loc, err := location.Parse(raw, func(string) (location.Kind, bool) { return location.PathKind, true })
		if err != nil {
			t.Fatal(err)
		}
		src, err := tensorboard.Open(context.Background(), loc)
		if err == nil {
			err = src.(sources.Checker).Check(context.Background())
			src.Close()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", raw, err, want)
		}
	}
}

// TestFingerprint: a run's fingerprint changes when an event file grows (a
// live run synced again) and stays when nothing changed, a damaged run's
// too (the ledger names its damage again; it was empty, so that every sync
// copied the damaged run again: ux10); a damaged file that grows changes
// it.
func TestFingerprint(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "a", "events.out.tfevents.1")
	writeEvents(t, file, scalarEvent("loss", 0, 100, 1))
	writeEvents(t, filepath.Join(root, "b", "events.out.tfevents.1"), scalarEvent("loss", 0, 100, 1))
	if err := os.WriteFile(filepath.Join(root, "b", "events.out.tfevents.1"), []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	fingerprints := func() map[string]string {
		src, err := tensorboard.New(tensorboard.Config{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		out := map[string]string{}
		ctx := context.Background()
		for e := range src.Experiments(ctx) {
			for r, err := range src.Runs(ctx, e.Origin) {
				if err != nil {
					t.Fatal(err)
				}
				fp, err := src.Fingerprint(ctx, r)
				if err != nil {
					t.Fatal(err)
				}
				out[r.Name] = fp
			}
		}
		return out
	}
	first := fingerprints()
	if first["a"] == "" || first["b"] == "" || first["a"] == first["b"] || len(first) != 2 {
		t.Fatalf("fingerprints %v: want one for a and one for the damaged b", first)
	}
	if again := fingerprints(); again["a"] != first["a"] || again["b"] != first["b"] {
		t.Fatalf("fingerprint of an unchanged run changed: %v then %v", first, again)
	}
	if err := os.WriteFile(filepath.Join(root, "b", "events.out.tfevents.1"), []byte{1, 2, 3, 4}, 0o644); err != nil {
		t.Fatal(err)
	}
	if grown := fingerprints(); grown["b"] == first["b"] || grown["b"] == "" {
		t.Fatalf("fingerprint of a damaged run whose file grew: %v then %v", first, grown)
	}
	writeEvents(t, file, scalarEvent("loss", 0, 100, 1), scalarEvent("loss", 1, 101, 0.5))
	if grown := fingerprints(); grown["a"] == first["a"] || grown["a"] == "" {
		t.Fatalf("fingerprint of a grown run: %v then %v", first, grown)
	}
}
