package fixturecheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
)

// expectedFile mirrors the parts of testdata/wandb/fixtures/expected.json checked here.
type expectedFile struct {
	Format int `json:"format"`
	Runs   map[string]struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		Segments int    `json:"segments"`
		History  []struct {
			Step   int64          `json:"step"`
			Values map[string]any `json:"values"`
		} `json:"history"`
	} `json:"runs"`
}

func fixturesDir(t *testing.T) string {
	return filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "fixtures")
}

func readExpected(t *testing.T, dir string) ([]byte, expectedFile) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp expectedFile
	if err := json.Unmarshal(data, &exp); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return data, exp
}

// runFolder matches W&B run folder names: (offline-)run-YYYYMMDD_HHMMSS-ID.
var runFolder = regexp.MustCompile(`^(offline-run|run)-\d{8}_\d{6}-(.+)$`)

// layout lists, per run id, the files of each segment folder (oldest first), as paths
// relative to the folder, plus the top-level entries of the wandb/ directory under "/".
// Timestamps in folder names are dropped; file contents are not looked at.
func layout(t *testing.T, wandbDir string) map[string][]string {
	t.Helper()
	entries, err := os.ReadDir(wandbDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range entries { // ReadDir sorts by name, so segments come oldest first
		m := runFolder.FindStringSubmatch(e.Name())
		if m == nil || e.Type()&os.ModeSymlink != 0 {
			out["/"] = append(out["/"], e.Name())
			continue
		}
		id := m[2]
		var files []string
		root := filepath.Join(wandbDir, e.Name())
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(files)
		seg := fmt.Sprintf("%s#%d", id, countPrefix(out, id+"#"))
		out[seg] = files
	}
	return out
}

func countPrefix(m map[string][]string, prefix string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// TestCommittedFixturesConsistent checks, without Python, that the committed folders match
// expected.json: one folder per segment, a .wandb file in each, no dangling symlinks.
func TestCommittedFixturesConsistent(t *testing.T) {
	dir := fixturesDir(t)
	_, exp := readExpected(t, dir)
	if exp.Format != 1 || len(exp.Runs) != 6 {
		t.Fatalf("expected.json: format %d with %d runs, want format 1 with 6 runs", exp.Format, len(exp.Runs))
	}
	lay := layout(t, filepath.Join(dir, "wandb"))
	for id, run := range exp.Runs {
		for seg := 0; seg < run.Segments; seg++ {
			files, ok := lay[fmt.Sprintf("%s#%d", id, seg)]
			if !ok {
				t.Errorf("run %s: segment %d folder missing", id, seg)
				continue
			}
			if !slices.Contains(files, "run-"+id+".wandb") {
				t.Errorf("run %s segment %d: no run-%s.wandb in %v", id, seg, id, files)
			}
		}
		if _, extra := lay[fmt.Sprintf("%s#%d", id, run.Segments)]; extra {
			t.Errorf("run %s: more folders than its %d segments", id, run.Segments)
		}
	}
	if want := []string{"fxa00001", "fxb00002", "fxc00003", "fxd00004", "fxe00005", "fxf00006"}; !slices.Equal(sortedKeys(exp.Runs), want) {
		t.Errorf("run ids %v, want %v", sortedKeys(exp.Runs), want)
	}
	if got := exp.Runs["fxa00001"].History; len(got) != 8 || got[3].Step != 5 || got[3].Values["loss"] != "NaN" {
		t.Errorf("run A history not as documented: %+v", got)
	}
	err := filepath.WalkDir(filepath.Join(dir, "wandb"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type()&os.ModeSymlink != 0 {
			if _, serr := os.Stat(p); serr != nil {
				t.Errorf("dangling symlink %s: %v", p, serr)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestRegenerateWandbFixtures reruns testdata/wandb/generate.py with the venv's wandb SDK
// into a temporary directory. The generator itself reads the .wandb files back and fails if
// the SDK did not write what expected.json claims; here the regenerated expected.json must
// equal the committed one byte for byte, and every run folder must hold the same file names.
func TestRegenerateWandbFixtures(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates W&B runs with the real SDK (~20s)")
	}
	python := testenv.Python(t)
	root := testenv.RepoRoot(t)
	out := t.TempDir()
	cmd := exec.Command(python, filepath.Join(root, "testdata", "wandb", "generate.py"), "--out", out)
	cmd.Dir = out
	cmd.Env = append(os.Environ(), "HOME="+out, "WANDB_CONFIG_DIR="+filepath.Join(out, ".config"),
		"WANDB_CACHE_DIR="+filepath.Join(out, ".cache"), "WANDB_DATA_DIR="+filepath.Join(out, ".data"))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("generate.py: %v\n%s", err, lastLines(log.String(), 40))
	}
	t.Logf("regenerated W&B fixtures in %s", time.Since(start).Round(time.Second))

	committed, _ := readExpected(t, fixturesDir(t))
	fresh, _ := readExpected(t, out)
	if !bytes.Equal(committed, fresh) {
		t.Errorf("regenerated expected.json differs from the committed one; run `make fixtures` and review the diff")
	}
	want := layout(t, filepath.Join(fixturesDir(t), "wandb"))
	got := layout(t, filepath.Join(out, "wandb"))
	for _, k := range sortedKeys(want) {
		if !slices.Equal(want[k], got[k]) {
			t.Errorf("%s: committed files %v, regenerated %v", k, want[k], got[k])
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: regenerated files %v not in the committed fixtures", k, got[k])
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
