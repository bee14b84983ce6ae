package mlflowlocal

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// TestWalkFiles: files below a folder, nested, with sizes, a symlink to a
// file followed and one to a folder not, a missing folder empty.
func TestWalkFiles(t *testing.T) {
	root := t.TempDir()
	for p, body := range map[string]string{"a.txt": "aa", "sub dir/b.bin": "bbb", "sub dir/deeper/c": ""} {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "a.txt"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "sub dir"), filepath.Join(root, "dirlink")); err != nil {
		t.Fatal(err)
	}
	list := func(dir string) []string {
		var out []string
		err := WalkFiles(context.Background(), root, dir, func(f mlflowapi.FileInfo, err error) bool {
			out = append(out, f.Path+":"+string(rune('0'+*f.FileSize)))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := list(""), []string{"a.txt:2", "link:2", "sub dir/b.bin:3", "sub dir/deeper/c:0"}; !slices.Equal(got, want) {
		t.Errorf("WalkFiles(root) = %q, want %q", got, want)
	}
	if got, want := list("sub dir/deeper"), []string{"sub dir/deeper/c:0"}; !slices.Equal(got, want) {
		t.Errorf("WalkFiles(sub dir/deeper) = %q, want %q", got, want)
	}
	if got := list("missing"); got != nil {
		t.Errorf("WalkFiles(missing) = %q, want none", got)
	}
}

func TestValidRel(t *testing.T) {
	for rel, want := range map[string]bool{"a": true, "a/b c/d.txt": true, "": false, "/a": false, "a/../b": false,
		"..": false, "a//b": false, "./a": false, `a\b`: false, "a/": false} {
		if got := ValidRel(rel); got != want {
			t.Errorf("ValidRel(%q) = %v, want %v", rel, got, want)
		}
	}
}

func TestLater(t *testing.T) {
	m := func(step, ts int64, v float64) mlflowapi.Metric {
		return mlflowapi.Metric{Step: step, Timestamp: ts, Value: mlflowapi.Float(v)}
	}
	for _, tt := range []struct {
		a, b mlflowapi.Metric
		want bool
	}{
		{m(2, 0, 0), m(1, 9, 9), true},
		{m(1, 9, 0), m(1, 8, 9), true},
		{m(1, 1, 2), m(1, 1, 1), true},
		{m(1, 1, 1), m(1, 1, 2), false},
		{m(1, 1, math.NaN()), m(1, 1, 1), false},
		{m(1, 1, 1), m(1, 1, math.NaN()), false},
	} {
		if got := Later(tt.a, tt.b); got != tt.want {
			t.Errorf("Later(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestInView(t *testing.T) {
	for _, tt := range []struct {
		stage, view string
		want        bool
	}{
		{mlflowapi.StageActive, mlflowapi.ViewActive, true}, {mlflowapi.StageDeleted, mlflowapi.ViewActive, false},
		{mlflowapi.StageActive, mlflowapi.ViewDeleted, false}, {mlflowapi.StageDeleted, mlflowapi.ViewDeleted, true},
		{mlflowapi.StageActive, mlflowapi.ViewAll, true}, {mlflowapi.StageDeleted, mlflowapi.ViewAll, true},
	} {
		if got := InView(tt.stage, tt.view); got != tt.want {
			t.Errorf("InView(%q, %q) = %v, want %v", tt.stage, tt.view, got, tt.want)
		}
	}
}
