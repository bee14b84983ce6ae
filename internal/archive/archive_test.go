package archive_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// manyRuns returns a dataset of n small runs in one experiment.
func manyRuns(n int) *dataset.Dataset {
	base := dataset.Canonical()
	d := &dataset.Dataset{Experiments: base.Experiments[:1]}
	for i := range n {
		r := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("run-%03d", i)},
			Experiment: base.Experiments[0].Origin, Name: fmt.Sprintf("run %d", i), Status: schema.StatusFinished,
			Start: base.Runs[0].Run.Start, End: base.Runs[0].Run.End}}
		for s := range 200 {
			r.Metrics = append(r.Metrics, schema.Metric{Key: "loss", Step: int64(s), Value: float64(i*1000 + s), Time: int64(1e12) + int64(s)})
		}
		r.Files = []dataset.File{{Path: "same.txt", Content: []byte("identical in every run")}}
		d.Runs = append(d.Runs, r)
	}
	return d
}

// TestIncremental writes many runs, changes one, writes again: the second
// write adds files for that run only, moves only its old files to
// history/, and the current data holds its new content once.
func TestIncremental(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	v1 := manyRuns(20)
	write(t, dir, v1)
	before := dataFiles(t, dir)
	v2 := v1.Clone()
	changed := v2.Runs[7]
	changed.Run.End = changed.Run.End.Add(1e9) // new content, new fingerprint
	for i := range changed.Metrics {
		changed.Metrics[i].Value = -1
	}
	rep := write(t, dir, v2)
	if rep.Totals.Committed != 1 || rep.Totals.Unchanged != 19 {
		t.Fatalf("second write: %+v, want 1 committed and 19 unchanged", rep.Totals)
	}
	after := dataFiles(t, dir)
	key := archive.EntityKey(changed.Run.Origin.String())
	var added, removed []string
	for _, f := range after {
		if !slices.Contains(before, f) {
			added = append(added, f)
		}
	}
	for _, f := range before {
		if !slices.Contains(after, f) {
			removed = append(removed, f)
		}
	}
	for _, f := range slices.Concat(added, removed) {
		if !strings.Contains(f, "/"+key+"/") {
			t.Errorf("second write touched %s, which is not run %s's (%s)", f, changed.Run.Origin, key)
		}
	}
	if len(added) != 3 || len(removed) != 3 { // runs, metrics, artifacts
		t.Errorf("second write added %v and removed %v, want the run's 3 files replaced", added, removed)
	}
	hist := dataFiles(t, filepath.Join(dir, "history"))
	if len(hist) != 3 {
		t.Errorf("history holds %v, want the 3 superseded files", hist)
	}
	expectEqual(t, dir, v2)
	if n := len(slices.DeleteFunc(after, func(f string) bool { return !strings.HasPrefix(f, "blobs/") })); n != 1 {
		t.Errorf("%d blobs for one distinct artifact content", n)
	}
	st, err := archive.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Manifest.Snapshot != 2 {
		t.Errorf("snapshot %d after two writes", st.Manifest.Snapshot)
	}
	for _, r := range st.Manifest.Runs {
		want := int64(1)
		if r.Origin == changed.Run.Origin.String() {
			want = 2
		}
		if r.Snapshot != want {
			t.Errorf("run %s is from snapshot %d, want %d", r.Origin, r.Snapshot, want)
		}
	}
	// A third identical write publishes nothing.
	write(t, dir, v2)
	if st, _ := archive.LoadState(dir); st.Manifest.Snapshot != 2 {
		t.Errorf("an unchanged write made snapshot %d", st.Manifest.Snapshot)
	}
}

// TestCheckDetectsEveryFlippedByte flips one byte of each data file and
// artifact body in turn: Check must fail naming that file, and pass again
// once the byte is restored.
func TestCheckDetectsEveryFlippedByte(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	write(t, dir, dataset.Canonical())
	if rep, err := archive.Check(dir); err != nil || !rep.OK() {
		t.Fatalf("fresh archive: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	files := dataFiles(t, dir)
	checked := 0
	for _, rel := range files {
		full := filepath.Join(dir, rel)
		data, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			continue // the empty artifact
		}
		i := rng.IntN(len(data))
		bad := slices.Clone(data)
		bad[i] ^= 1 << rng.IntN(8)
		if err := os.WriteFile(full, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = archive.Check(dir)
		if err == nil || !strings.Contains(err.Error(), full) {
			t.Errorf("byte %d of %s flipped: Check returned %v", i, rel, err)
		}
		os.WriteFile(full, data, 0o644)
		checked++
	}
	if _, err := archive.Check(dir); err != nil {
		t.Fatalf("after restoring: %v", err)
	}
	if checked < 15 {
		t.Fatalf("only %d files checked", checked)
	}
}

// TestBadInput damages files in the ways a disk or a person might and
// expects clear errors naming the file, from Check and from the source.
func TestBadInput(t *testing.T) {
	clean := filepath.Join(t.TempDir(), "clean")
	write(t, clean, dataset.Canonical())
	metricsFile := func(dir string) string {
		for _, f := range dataFiles(t, dir) {
			if strings.HasPrefix(f, "metrics/") {
				return filepath.Join(dir, f)
			}
		}
		t.Fatal("no metrics file")
		return ""
	}
	tests := []struct {
		name   string
		damage func(dir string) string // returns the damaged file
	}{
		{"truncated parquet", func(dir string) string {
			f := metricsFile(dir)
			fi, _ := os.Stat(f)
			os.Truncate(f, fi.Size()/2)
			return f
		}},
		{"parquet replaced by garbage of the same size", func(dir string) string {
			f := metricsFile(dir)
			fi, _ := os.Stat(f)
			os.WriteFile(f, []byte(strings.Repeat("x", int(fi.Size()))), 0o644)
			return f
		}},
		{"truncated manifest", func(dir string) string {
			f := filepath.Join(dir, "manifest.json")
			fi, _ := os.Stat(f)
			os.Truncate(f, fi.Size()-40)
			return f
		}},
		{"tampered manifest", func(dir string) string {
			f := filepath.Join(dir, "manifest.json")
			data, _ := os.ReadFile(f)
			os.WriteFile(f, []byte(strings.Replace(string(data), `"points": 2753`, `"points": 2754`, 1)), 0o644)
			return f
		}},
		{"missing data file", func(dir string) string {
			f := metricsFile(dir)
			os.Remove(f)
			return f
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "archive")
			if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
				t.Fatal(err)
			}
			file := tt.damage(dir)
			_, err := archive.Check(dir)
			if err == nil || !strings.Contains(err.Error(), file) {
				t.Errorf("Check: %v; want an error naming %s", err, file)
			}
			_, err = read(t, dir)
			if err == nil || !strings.Contains(err.Error(), file) {
				t.Errorf("source: %v; want an error naming %s", err, file)
			}
			if strings.Contains(file, "manifest") {
				return
			}
			if !errors.Is(err, archive.ErrDamaged) && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("source error %v is neither ErrDamaged nor ErrNotExist", err)
			}
		})
	}
}

// TestPrune keeps the newest snapshots and removes what only older ones
// used; reading the pruned snapshot fails, the kept ones read as written.
func TestPrune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	var versions []*dataset.Dataset
	for i := range 3 {
		d := dataset.Canonical()
		d.Runs[0].Run.Notes = fmt.Sprintf("version %d", i)
		d.Runs[0].Files = append(d.Runs[0].Files, dataset.File{Path: "v.txt", Content: []byte(fmt.Sprint(i))})
		write(t, dir, d)
		versions = append(versions, d)
	}
	for i, want := range versions {
		readSnapshot(t, dir, int64(i+1), want)
	}
	rep, err := archive.Prune(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Snapshot 1 alone used run-big's first version of 6 files (runs,
	// params, tags, rich_values, logs, artifacts), run-running's first
	// runs file (a running run is always written again) and the body of
	// v.txt "0". Both runs are appended to, without a ledger, from the
	// cursors their entries keep: their metrics files, with no point
	// added, stay current.
	if rep.Snapshots != 1 || rep.Files != 7 || rep.Blobs != 1 || !slices.Equal(rep.Kept, []int64{2, 3}) {
		t.Errorf("prune report %+v: want snapshot 1, its 7 superseded files and its blob removed", rep)
	}
	if _, err := archive.OpenReader(dir, 1); err == nil {
		t.Error("pruned snapshot 1 still opens")
	}
	readSnapshot(t, dir, 2, versions[1])
	readSnapshot(t, dir, 3, versions[2])
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Prune(dir, 0); err == nil {
		t.Error("keep 0 accepted")
	}
	if _, err := archive.Prune(dir, 1); err != nil {
		t.Fatal(err)
	}
	if h := dataFiles(t, filepath.Join(dir, "history")); len(h) != 0 {
		t.Errorf("history after keeping 1 snapshot: %v", h)
	}
	expectEqual(t, dir, versions[2])
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
}

func readSnapshot(t *testing.T, dir string, n int64, want *dataset.Dataset) {
	t.Helper()
	src, err := srcparquetNew(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := dataset.Read(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("snapshot %d:\n%s", n, strings.Join(diff, "\n"))
	}
}
