package wandbfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// samplesDir is where the project's real-world samples live, relative to
// this package (../shared/samples from the project root).
const samplesDir = "../../../shared/samples/wandb"

// requireSamples returns the W&B samples directory or skips the test.
func requireSamples(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(samplesDir); err != nil {
		testenv.Unavailable(t, "the real-world samples at "+samplesDir, err.Error())
	}
	return samplesDir
}

// sampleFile returns the path of one sample `.wandb` file below samplesDir,
// skipping the test when it is absent.
func sampleFile(t testing.TB, rel string) string {
	t.Helper()
	path := filepath.Join(requireSamples(t), rel)
	if _, err := os.Stat(path); err != nil {
		testenv.Unavailable(t, "the sample "+rel, err.Error())
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

// The files the samples README describes, below samplesDir.
const (
	armLive   = "ARM-software__keyword-transformer/wandb/run-20220429_201936-3ojed7lz/run-3ojed7lz.wandb"
	armEmpty  = "ARM-software__keyword-transformer/wandb/run-20220429_201847-2zuxwf70/run-2zuxwf70.wandb"
	tarunRuns = "Tarun-AK__scaling/wandb"
	uruti     = "NiyonshutiDavid__uruti_MLOP/wandb/run-20250802_060401-ligyd8o4/run-ligyd8o4.wandb"
	mozilla   = "mozilla__search-term-data-validation/wandb/run-20231215_095521-y0fap6xc/run-y0fap6xc.wandb"
)

// The expected numbers below were counted independently with a separate
// Python reader of the framing and top-level protobuf fields (zlib CRC-32),
// not with this package.

// TestSampleARMLiveRun: SDK 0.12.15 run cut off while live: 1106 records,
// 862 history rows with steps 0..861, no exit record, and the final chunk
// (header at offset 335628, payload missing) reported as truncation.
func TestSampleARMLiveRun(t *testing.T) {
	s := readAll(t, sampleFile(t, armLive))
	if s.records != 1106 || s.kinds[KindHistory] != 862 || s.kinds[KindExit] != 0 {
		t.Errorf("records=%d history=%d exit=%d, want 1106, 862, 0", s.records, s.kinds[KindHistory], s.kinds[KindExit])
	}
	for i, step := range s.steps {
		if step != int64(i) {
			t.Fatalf("history row %d has step %d", i, step)
		}
	}
	if len(s.damage) != 1 || s.damage[0].Offset != 335628 || !s.damage[0].Truncated {
		t.Errorf("damage %v, want one truncation at 335628", s.damage)
	}
}

// TestSampleARMEmptyRun: a run that failed at once (legacy writer): exit,
// final and footer records, no history.
func TestSampleARMEmptyRun(t *testing.T) {
	s := readAll(t, sampleFile(t, armEmpty))
	if s.records != 11 || s.kinds[KindHistory] != 0 || s.kinds[KindFinal] != 1 || s.kinds[KindFooter] != 1 {
		t.Errorf("records=%d kinds=%v", s.records, s.kinds)
	}
	if len(s.exitCodes) != 1 || s.exitCodes[0] != 1 || len(s.damage) != 0 {
		t.Errorf("exit codes %v, damage %v; want [1] and none", s.exitCodes, s.damage)
	}
	if len(s.runIDs) != 1 || s.runIDs[0] != "2zuxwf70" {
		t.Errorf("run ids %v", s.runIDs)
	}
}

// TestSampleTarunSegments: run klt5o1bl (SDK 0.25.0) written as 4 segments.
// One crashed: no history, no exit, a record cut short at its end.
func TestSampleTarunSegments(t *testing.T) {
	want := map[string]struct {
		records, history, stats, exits int
		firstStep, lastStep            int64
		truncatedAt                    int64 // -1: no damage
	}{
		"run-20260303_204544-klt5o1bl": {3528, 940, 670, 1, 50, 46510, -1},
		"run-20260310_163145-klt5o1bl": {54, 2, 32, 1, 46511, 46512, -1},
		"run-20260310_180010-klt5o1bl": {8, 0, 0, 0, 0, 0, 83676},
		"run-20260310_180257-klt5o1bl": {54, 2, 32, 1, 46514, 46515, -1},
	}
	totalStats := 0
	for seg, w := range want {
		s := readAll(t, sampleFile(t, filepath.Join(tarunRuns, seg, "run-klt5o1bl.wandb")))
		totalStats += s.kinds[KindStats]
		if s.records != w.records || s.kinds[KindHistory] != w.history || s.kinds[KindStats] != w.stats || s.kinds[KindExit] != w.exits {
			t.Errorf("%s: records=%d kinds=%v", seg, s.records, s.kinds)
		}
		if len(s.runIDs) != 1 || s.runIDs[0] != "klt5o1bl" {
			t.Errorf("%s: run ids %v", seg, s.runIDs)
		}
		if w.history > 0 && (s.steps[0] != w.firstStep || s.steps[len(s.steps)-1] != w.lastStep) {
			t.Errorf("%s: steps %d..%d", seg, s.steps[0], s.steps[len(s.steps)-1])
		}
		for i := 1; i < len(s.steps); i++ {
			if s.steps[i] <= s.steps[i-1] {
				t.Errorf("%s: step %d after %d", seg, s.steps[i], s.steps[i-1])
			}
		}
		if w.truncatedAt < 0 && len(s.damage) != 0 {
			t.Errorf("%s: damage %v", seg, s.damage)
		}
		if w.truncatedAt >= 0 && (len(s.damage) != 1 || s.damage[0].Offset != w.truncatedAt || !s.damage[0].Truncated) {
			t.Errorf("%s: damage %v, want one truncation at %d", seg, s.damage, w.truncatedAt)
		}
	}
	if totalStats != 734 {
		t.Errorf("stats records over all segments: %d, want 734", totalStats)
	}
}

// TestSampleCoreRecords: SDK 0.21.0 (wandb-core): define_metric and
// environment records, exit without final/footer, nested_key history items.
func TestSampleCoreRecords(t *testing.T) {
	path := sampleFile(t, uruti)
	s := readAll(t, path)
	if s.records != 676 || s.kinds[KindMetric] != 15 || s.kinds[KindEnvironment] != 2 || s.kinds[KindExit] != 1 ||
		s.kinds[KindFinal] != 0 || s.kinds[KindFooter] != 0 || s.kinds[KindHistory] != 6 {
		t.Errorf("records=%d kinds=%v", s.records, s.kinds)
	}
	var stepMetric, header string
	eachRecord(t, path, func(rec Record) {
		switch rec.Kind {
		case KindMetric:
			if rec.Metric.GlobName == "*" {
				stepMetric = rec.Metric.StepMetric
			}
		case KindHeader:
			header = rec.Header.Producer
		case KindHistory:
			for _, it := range rec.History.Items {
				if len(it.NestedKey) == 0 {
					t.Errorf("wandb-core history item without nested_key: %+v", it)
				}
			}
		}
	})
	if stepMetric != "train/global_step" || !strings.HasPrefix(header, "0.21.0+") {
		t.Errorf("glob metric step %q, producer %q", stepMetric, header)
	}
}

// TestSampleArtifactRecord: SDK 0.16.1 offline log_artifact is persisted.
func TestSampleArtifactRecord(t *testing.T) {
	var arts []*Artifact
	eachRecord(t, sampleFile(t, mozilla), func(rec Record) {
		if rec.Kind == KindArtifact {
			arts = append(arts, rec.Artifact)
		}
	})
	if len(arts) != 1 || arts[0].Name == "" || arts[0].Type == "" {
		t.Errorf("artifact records %+v", arts)
	}
}

// eachRecord calls fn with every record of the file that decodes.
func eachRecord(t testing.TB, path string, fn func(Record)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f, filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	for {
		payload, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec, err := Decode(payload); err == nil {
			fn(rec)
		}
	}
}
