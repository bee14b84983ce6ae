package wandbfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samplesDir is where the project's real-world samples live, relative to
// this package (../shared/samples from the project root).
const samplesDir = "../../../shared/samples/wandb"

// requireSamples returns the W&B samples directory or skips the test.
func requireSamples(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(samplesDir); err != nil {
		t.Skipf("real-world samples not found at %s (a clone without ../shared): %v", samplesDir, err)
	}
	return samplesDir
}

// sampleFile returns the path of one sample `.wandb` file below samplesDir,
// skipping the test when it is absent.
func sampleFile(t testing.TB, rel string) string {
	t.Helper()
	path := filepath.Join(requireSamples(t), rel)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("sample %s not found: %v", rel, err)
	}
	return path
}

// fileSummary is what readAll learns about one file.
type fileSummary struct {
	records   int
	kinds     map[Kind]int
	steps     []int64 // history steps in file order
	decodeErr []error
	damage    []Damage
	runIDs    []string
	exitCodes []int32
}

// readAll reads and decodes every record of the file at path.
func readAll(t testing.TB, path string) fileSummary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f, filepath.Base(path))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	s := fileSummary{kinds: map[Kind]int{}}
	for {
		payload, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		s.records++
		rec, err := Decode(payload)
		if err != nil {
			s.decodeErr = append(s.decodeErr, err)
			continue
		}
		s.kinds[rec.Kind]++
		switch rec.Kind {
		case KindHistory:
			step, ok := rec.History.StepValue()
			if !ok {
				t.Errorf("history record without step")
			}
			s.steps = append(s.steps, step)
		case KindRun:
			s.runIDs = append(s.runIDs, rec.Run.RunID)
		case KindExit:
			s.exitCodes = append(s.exitCodes, rec.Exit.ExitCode)
		}
	}
	s.damage = r.Damage()
	return s
}

// TestSamplesReadWithoutErrors reads every `.wandb` file among the samples:
// no panic, every record decodes, and damage appears only where the samples
// README says a file is cut short.
func TestSamplesReadWithoutErrors(t *testing.T) {
	dir := requireSamples(t)
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(path, ".wandb") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .wandb files under %s", dir)
	}
	for _, path := range files {
		rel, _ := filepath.Rel(dir, path)
		t.Run(rel, func(t *testing.T) {
			s := readAll(t, path)
			if s.records == 0 {
				t.Errorf("no records")
			}
			for _, err := range s.decodeErr {
				t.Errorf("decode: %v", err)
			}
			for _, d := range s.damage {
				if !d.Truncated {
					t.Errorf("unexpected damage: %v", d)
				}
			}
			if s.kinds[KindHeader] != 1 || s.kinds[KindRun] != 1 {
				t.Errorf("want one header and one run record, got %d and %d", s.kinds[KindHeader], s.kinds[KindRun])
			}
			t.Logf("records=%d kinds=%v damage=%v", s.records, s.kinds, s.damage)
		})
	}
}
