package tensorboard_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/sourcetest"
	"github.com/runferry/runferry/sources/tensorboard"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func openAt(root string) func(*testing.T) sources.Source {
	return func(t *testing.T) sources.Source {
		t.Helper()
		loc, err := location.Parse("tensorboard:"+root, func(string) (location.Kind, bool) { return location.PathKind, true })
		if err != nil {
			t.Fatal(err)
		}
		src, err := tensorboard.Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
}

func TestConformance(t *testing.T) {
	dir := testenv.TensorBoardLogs(t)
	other := filepath.Join(t.TempDir(), "logs")
	if b, err := exec.Command("cp", "-a", filepath.Join(dir, "logs"), other).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, b)
	}
	sourcetest.Run(t, sourcetest.Opt{
		Open:      openAt(filepath.Join(dir, "logs")),
		OpenOther: openAt(other),
		// Content is compared with EventAccumulator in TestMatchesEventAccumulator.
	})
}

// reference is reference.py's output: per folder, what EventAccumulator read.
type reference map[string]struct {
	Scalars map[string][][3]any
	Tensors map[string]struct {
		Plugin string
		Events [][3]any
	}
	Histograms map[string][][3]any
	Images     map[string][][5]any
	HParams    map[string]map[string]any
}

type point struct {
	Key   string
	Step  int64
	Time  int64
	Value string // formatted, so NaN compares equal
}

func fmtValue(v any) string {
	switch v := v.(type) {
	case float64:
		return fmt.Sprint(v)
	case string: // "NaN", "Infinity"
		switch v {
		case "Infinity":
			return fmt.Sprint(math.Inf(1))
		case "-Infinity":
			return fmt.Sprint(math.Inf(-1))
		}
		return v
	}
	return fmt.Sprintf("?%v", v)
}

// wallMillis converts a reference wall time as the source must.
func wallMillis(w any) int64 {
	f := w.(float64)
	return int64(math.Floor(math.Round(f*1e6) / 1000))
}

// runOf maps a reference folder to its run's relative folder and key prefix.
func runOf(folder string) (string, string) {
	if b := path.Base(folder); (b == "train" || b == "validation") && folder != b {
		return path.Dir(folder), b + "/"
	}
	if folder == "train" || folder == "validation" {
		return ".", folder + "/"
	}
	return folder, ""
}

// TestMatchesEventAccumulator reads the logs real writers made and compares
// every run, point by point, with what tensorboard's EventAccumulator reads.
func TestMatchesEventAccumulator(t *testing.T) {
	dir := testenv.TensorBoardLogs(t)
	root := filepath.Join(dir, "logs")
	var ref reference
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil || json.Unmarshal(b, &ref) != nil {
		t.Fatalf("reference.json: %v", err)
	}
	src := openAt(root)(t)
	defer src.Close()
	d, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.EvalSymlinks(root)
	runs := map[string]*dataset.RunData{}
	for _, r := range d.Runs {
		rel := strings.TrimPrefix(r.Run.Origin.ID, abs+"#")
		runs[rel] = r
	}
	if len(d.Experiments) != 1 || d.Experiments[0].Name != "logs" || d.Experiments[0].Origin != (schema.Ref{System: "tensorboard", ID: abs}) {
		t.Fatalf("experiments: %+v", d.Experiments)
	}

	wantPoints := map[string][]point{}
	type image struct {
		Key    string
		Step   int64
		W, H   int
		SHA256 string
	}
	wantImages := map[string][]image{}
	wantHist := map[string][]string{}
	for folder, f := range ref {
		run, prefix := runOf(folder)
		for tag, evs := range f.Scalars {
			for _, e := range evs {
				wantPoints[run] = append(wantPoints[run], point{prefix + tag, int64(e[1].(float64)), wallMillis(e[0]), fmtValue(e[2])})
			}
		}
		for tag, ts := range f.Tensors {
			for _, e := range ts.Events {
				step, ms := int64(e[1].(float64)), wallMillis(e[0])
				switch ts.Plugin {
				case "scalars":
					wantPoints[run] = append(wantPoints[run], point{prefix + tag, step, ms, fmtValue(e[2])})
				case "images":
					s := e[2].([]any)
					var w, h int
					fmt.Sscan(s[0].(string), &w)
					fmt.Sscan(s[1].(string), &h)
					for _, sum := range s[2:] {
						wantImages[run] = append(wantImages[run], image{prefix + tag, step, w, h, sum.(string)})
					}
				case "histograms":
					var bs []string
					for _, row := range e[2].([]any) {
						r := row.([]any)
						bs = append(bs, fmt.Sprintf("[%v,%v,%v]", r[0], r[1], r[2]))
					}
					wantHist[run] = append(wantHist[run], fmt.Sprintf("%s@%d {\"_type\":\"tensorboard.histogram\",\"buckets\":[%s]}", prefix+tag, step, strings.Join(bs, ",")))
				}
			}
		}
		for tag, evs := range f.Images {
			for _, e := range evs {
				wantImages[run] = append(wantImages[run], image{prefix + tag, int64(e[1].(float64)), int(e[2].(float64)), int(e[3].(float64)), e[4].(string)})
			}
		}
		for tag, evs := range f.Histograms {
			for _, e := range evs {
				h := e[2].(map[string]any)
				js, _ := json.Marshal(map[string]any{"_type": "tensorboard.histogram", "min": h["min"], "max": h["max"], "num": h["num"],
					"sum": h["sum"], "sum_squares": h["sum_squares"], "bucket_limit": h["bucket_limit"], "bucket": h["bucket"]})
				wantHist[run] = append(wantHist[run], fmt.Sprintf("%s@%d %s", prefix+tag, int64(e[1].(float64)), canonJSON(t, string(js))))
			}
		}
	}
	// EventAccumulator stops at the record whose checksum is wrong; the
	// source skips that record (step 2) and reads on.
	for s := int64(3); s < 10; s++ {
		wantPoints["damaged/crc"] = append(wantPoints["damaged/crc"], point{"loss", s, wallMillis(1_750_000_000.0 + float64(s)), fmtValue(float64(s))})
	}

	if got, want := slices.Sorted(maps.Keys(runs)), slices.Sorted(maps.Keys(wantPoints)); !reflect.DeepEqual(got, want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	for rel, r := range runs {
		var got []point
		for _, m := range r.Metrics {
			got = append(got, point{m.Key, m.Step, m.Time, fmtValue(m.Value)})
		}
		sortPoints(got)
		want := wantPoints[rel]
		sortPoints(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("run %s: metrics differ from EventAccumulator's\n got %v\nwant %v", rel, got, want)
		}
		var gotImages []image
		var gotHist []string
		for _, v := range r.RichValues {
			switch v.Type {
			case "image-file":
				var im struct {
					Path          string
					Width, Height int
					SHA256        string
				}
				if err := json.Unmarshal([]byte(v.JSON), &im); err != nil {
					t.Fatal(err)
				}
				gotImages = append(gotImages, image{v.Key, v.Step, im.Width, im.Height, im.SHA256})
				i, ok := slices.BinarySearchFunc(r.Files, im.Path, func(f dataset.File, p string) int { return strings.Compare(f.Path, p) })
				if !ok || !reflect.DeepEqual(v.Files, []string{im.Path}) {
					t.Errorf("run %s: image %s is not among the run's files", rel, im.Path)
				} else if sum := sha256Hex(r.Files[i].Content); sum != im.SHA256 {
					t.Errorf("run %s: file %s has sha256 %s, want %s", rel, im.Path, sum, im.SHA256)
				}
			case "tensorboard.histogram":
				gotHist = append(gotHist, fmt.Sprintf("%s@%d %s", v.Key, v.Step, canonJSON(t, v.JSON)))
			default:
				t.Errorf("run %s: rich value of type %s", rel, v.Type)
			}
		}
		sort.Slice(gotImages, func(i, j int) bool { return fmt.Sprint(gotImages[i]) < fmt.Sprint(gotImages[j]) })
		wi := wantImages[rel]
		sort.Slice(wi, func(i, j int) bool { return fmt.Sprint(wi[i]) < fmt.Sprint(wi[j]) })
		if !reflect.DeepEqual(gotImages, wi) {
			t.Errorf("run %s: images\n got %v\nwant %v", rel, gotImages, wi)
		}
		slices.Sort(gotHist)
		wh := wantHist[rel]
		slices.Sort(wh)
		if !reflect.DeepEqual(gotHist, wh) {
			t.Errorf("run %s: histograms\n got %v\nwant %v", rel, gotHist, wh)
		}
		if len(r.Files) != len(gotImages) {
			t.Errorf("run %s: %d files for %d images", rel, len(r.Files), len(gotImages))
		}
		var bytes int64
		for _, f := range r.Files {
			bytes += int64(len(f.Content))
		}
		if p, b, ok := src.(sources.Sizer).Size(context.Background(), r.Run); !ok || p != int64(len(r.Metrics)) || b != bytes {
			t.Errorf("run %s: Size %d points, %d bytes (%v); read %d points, %d bytes", rel, p, b, ok, len(r.Metrics), bytes)
		}
	}

	// Params, status and logs, from the hparams plugin and text summaries.
	params := func(rel string) map[string]string {
		m := map[string]string{}
		for _, p := range runs[rel].Run.Params {
			m[p.Key] = p.Value
		}
		return m
	}
	if got, want := params("tbx"), map[string]string{"args.lr": "0.001", "args.optim.name": "adam", "args.optim.betas": "[0.9,0.999]", "args.seed": "7"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tbx params %v, want %v", got, want)
	}
	hp := ref["tbx/hparams"].HParams["_hparams_/session_start_info"]["sessionStartInfo"].(map[string]any)["hparams"].(map[string]any)
	wantHP := map[string]string{}
	for k, v := range hp {
		wantHP[k] = fmt.Sprint(v)
	}
	if got := params("tbx/hparams"); !reflect.DeepEqual(got, wantHP) {
		t.Errorf("tbx/hparams params %v, want %v (EventAccumulator's)", got, wantHP)
	}
	if got, want := params("tf2"), map[string]string{"units": "64", "dropout": "0.2", "act": "relu"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tf2 params %v, want %v", got, want)
	}
	for rel, want := range map[string]schema.RunStatus{"tbx/hparams": schema.StatusFinished, "tf2": schema.StatusFailed, "keras": schema.StatusFinished} {
		if got := runs[rel].Run.Status; got != want {
			t.Errorf("run %s: status %s, want %s", rel, got, want)
		}
	}
	tf2 := runs["tf2"].Run
	if s, e := tf2.Start.UnixMilli(), tf2.End.UnixMilli(); s != 1_749_999_995_000 || e != 1_750_000_040_000 {
		t.Errorf("tf2: start %d end %d, want the hparams session's times", s, e)
	}
	if !slices.Contains(tf2.Tags, schema.Tag{Key: "tensorboard.hparams.group", Value: "trial-7"}) {
		t.Errorf("tf2 tags %v lack the hparams group", tf2.Tags)
	}
	logs := func(rel string) []string {
		var out []string
		for _, l := range runs[rel].Logs {
			out = append(out, fmt.Sprintf("%d %s", l.Time, l.Line))
		}
		return out
	}
	if got, want := logs("tbx"), []string{"1750000001000 notes (step 0): first line", "1750000001000 notes (step 0): second line"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tbx logs %q, want %q", got, want)
	}
	if got, want := logs("tf2"), []string{"1750000031000 log (step 1): epoch 1 done", "1750000032000 log (step 2): a", "1750000032000 log (step 2): b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tf2 logs %q, want %q", got, want)
	}

	// Damage is named by file and offset; nothing else is damaged.
	for rel, r := range runs {
		var want string
		switch rel {
		case "damaged/truncated":
			want = ": truncated record ("
		case "damaged/crc":
			want = ": record data checksum mismatch (record skipped)"
		}
		if want == "" {
			if len(r.Run.Damage) != 0 {
				t.Errorf("run %s: damage %v", rel, r.Run.Damage)
			}
			continue
		}
		if len(r.Run.Damage) != 1 || !strings.HasPrefix(r.Run.Damage[0], rel+"/events.out.tfevents.") || !strings.Contains(r.Run.Damage[0], ": offset ") || !strings.Contains(r.Run.Damage[0], want) {
			t.Errorf("run %s: damage %q, want one naming the file and offset, %q", rel, r.Run.Damage, want)
		}
	}
	omitted := src.(sources.Omitter).Omitted(context.Background())
	if want := map[string]int64{"tensorboard pr_curves plugin summaries": 1}; !reflect.DeepEqual(omitted, want) {
		t.Errorf("omitted %v, want %v", omitted, want)
	}
}

func sortPoints(p []point) {
	sort.Slice(p, func(i, j int) bool {
		a, b := p[i], p[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		return a.Time < b.Time
	})
}

func canonJSON(t *testing.T, s string) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
