package archive_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// registryData returns n registered models; version 1 of the data changes
// every model's description, an alias and a stage and adds a version.
func registryData(n, version int) []schema.RegisteredModel {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 8_000_000, time.UTC)
	var out []schema.RegisteredModel
	for i := range n {
		m := schema.RegisteredModel{Origin: schema.Ref{System: "mlflow", ID: fmt.Sprintf("h:5000/model/m%02d", i)},
			Name: fmt.Sprintf("model-%02d", i), Description: fmt.Sprintf("v%d model %d\nünïcode", version, i),
			Tags:      []schema.Tag{{Key: "team", Value: "risk"}, {Key: "z", Value: fmt.Sprint(i)}},
			Aliases:   []schema.ModelAlias{{Alias: "champion", Version: int64(2 + version)}, {Alias: "first", Version: 1}},
			CreatedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0.Add(time.Duration(i+version) * time.Hour)}
		for v := int64(1); v <= int64(3+version); v++ {
			mv := schema.ModelVersion{Version: v, Description: fmt.Sprintf("version %d", v), Stage: "Archived", Status: "READY",
				Tags:      []schema.Tag{{Key: "trained_on", Value: fmt.Sprintf("2026-0%d", v)}},
				Source:    fmt.Sprintf("mlflow-artifacts:/1/run%d/artifacts/model", v),
				Run:       schema.Ref{System: "mlflow", ID: fmt.Sprintf("h:5000/run%d", v)},
				RunPath:   "model",
				CreatedAt: t0.Add(time.Duration(v) * time.Second), UpdatedAt: t0.Add(time.Duration(v+int64(version)) * time.Second)}
			if v == 2+int64(version) {
				mv.Stage = "Production"
			}
			if v == 3 {
				mv.Run, mv.RunPath, mv.Source, mv.Tags = schema.Ref{}, "", "s3://bucket/m/3", nil
			}
			m.Versions = append(m.Versions, mv)
		}
		m.Canonicalize()
		out = append(out, m)
	}
	return out
}

// putModels writes models through an archive writer and publishes.
func putModels(t testing.TB, dir string, models []schema.RegisteredModel) (written int) {
	t.Helper()
	w, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range models {
		did, err := w.PutModel(m)
		if err != nil {
			t.Fatal(err)
		}
		if did {
			written++
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return written
}

func readModels(t testing.TB, dir string) []schema.RegisteredModel {
	t.Helper()
	r, err := archive.OpenReader(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := r.RegisteredModels()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func sameModels(t testing.TB, what string, want, got []schema.RegisteredModel) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		w, _ := json.MarshalIndent(want, "", " ")
		g, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("%s: models differ\nwant %s\ngot  %s", what, w, g)
	}
}

func manifestVersion(t testing.TB, dir string) (version int, snapshot int64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, archive.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		FormatVersion int   `json:"format_version"`
		Snapshot      int64 `json:"snapshot"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.FormatVersion, m.Snapshot
}

// TestRegistryRoundTrip: registered models and their versions are held in
// registered_models/ and model_versions/ (format version 3) and read back
// exactly; writing them again unchanged writes nothing (no snapshot, no
// file), a changed model replaces its files whole (the old ones move to
// history/ and stay readable in the earlier snapshot), and Check passes.
func TestRegistryRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	d := dataset.Canonical()
	write(t, dir, d)
	v0 := registryData(3, 0)
	if n := putModels(t, dir, v0); n != 3 {
		t.Fatalf("first write wrote %d models, want 3", n)
	}
	sameModels(t, "first write", v0, readModels(t, dir))
	expectEqual(t, dir, d)
	version, snap := manifestVersion(t, dir)
	if version != archive.FormatVersion || snap != 2 {
		t.Fatalf("manifest format_version %d snapshot %d, want %d and 2", version, snap, archive.FormatVersion)
	}
	for _, table := range []string{archive.TableRegisteredModels, archive.TableModelVersions} {
		files, _ := filepath.Glob(filepath.Join(dir, table, "*", "*.parquet"))
		if len(files) != 3 {
			t.Fatalf("%s holds %v, want one file per model", table, files)
		}
	}
	before := dataFiles(t, dir)
	if n := putModels(t, dir, v0); n != 0 {
		t.Fatalf("an unchanged registry wrote %d models again", n)
	}
	if _, s := manifestVersion(t, dir); s != snap || !slices.Equal(before, dataFiles(t, dir)) {
		t.Fatalf("an unchanged registry changed the archive: snapshot %d (was %d)", s, snap)
	}
	v1 := registryData(3, 1)
	if n := putModels(t, dir, v1[:2]); n != 2 {
		t.Fatalf("changed models written: %d, want 2", n)
	}
	want := append(slices.Clone(v1[:2]), v0[2])
	sameModels(t, "after a change", want, readModels(t, dir))
	oneVersionPerRun(t, dir)
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenReader(dir, snap)
	if err != nil {
		t.Fatal(err)
	}
	old, err := r.RegisteredModels()
	if err != nil {
		t.Fatal(err)
	}
	sameModels(t, fmt.Sprintf("snapshot %d", snap), v0, old)
}

// setManifestVersion rewrites manifest.json and the current snapshot's
// manifest as a writer of format version v would have written them (a
// manifest without models encodes the same in versions 2 and 3) and
// returns the version it had.
func setManifestVersion(t testing.TB, dir string, v int) int {
	t.Helper()
	path := filepath.Join(dir, archive.ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m archive.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	old := m.FormatVersion
	m.FormatVersion, m.Checksum = v, ""
	body, _ := json.MarshalIndent(m, "", " ")
	sum := sha256.Sum256(body)
	m.Checksum = hex.EncodeToString(sum[:])
	body, _ = json.MarshalIndent(m, "", " ")
	for _, p := range []string{path, filepath.Join(dir, "snapshots", fmt.Sprintf("%06d.json", m.Snapshot))} {
		if err := os.WriteFile(p, append(body, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return old
}

// TestReadsFormatVersion2: an archive of format version 2 (no model
// registry) is read as it is, with no registered models; the first write
// of a registry into it records the current version and keeps every run.
func TestReadsFormatVersion2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	d := dataset.Canonical()
	write(t, dir, d)
	if v := setManifestVersion(t, dir, 2); v != archive.FormatVersion {
		t.Fatalf("a new archive has format version %d, want %d", v, archive.FormatVersion)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, archive.ManifestFile))
	var keys map[string]json.RawMessage
	json.Unmarshal(raw, &keys)
	if _, ok := keys["models"]; ok {
		t.Fatal("a manifest without models holds a models key: a version 2 reader would refuse it")
	}
	expectEqual(t, dir, d)
	if ms := readModels(t, dir); len(ms) != 0 {
		t.Fatalf("a version 2 archive read %d models", len(ms))
	}
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
	models := registryData(2, 0)
	putModels(t, dir, models)
	expectEqual(t, dir, d)
	sameModels(t, "after writing into a version 2 archive", models, readModels(t, dir))
	if v, _ := manifestVersion(t, dir); v != archive.FormatVersion {
		t.Fatalf("after a write into a version 2 archive the manifest says version %d, want %d", v, archive.FormatVersion)
	}
}

const registryCrashEnv = "RUNFERRY_ARCHIVE_REGISTRY_CRASH_CHILD"

// TestRegistryCrashChild is the process TestRegistryCrashSafety kills: it
// writes version 1 of the registry into the archive named by the
// environment. It does nothing otherwise.
func TestRegistryCrashChild(t *testing.T) {
	dir := os.Getenv(registryCrashEnv)
	if dir == "" {
		t.Skip("run by TestRegistryCrashSafety")
	}
	models := registryData(60, 1)
	fmt.Println(childWriting)
	putModels(t, dir, models)
}

// registryKills is how many times TestRegistryCrashSafety kills a writer,
// one in each quarter of an uninterrupted write, counted from its first
// write (killMoments, startChild).
const registryKills = 4

// TestRegistryCrashSafety kills a process writing version 1 of a registry
// over version 0 at registryKills random moments, one in each quarter of
// the write: after each kill Check passes, each model reads back wholly as
// version 0 or wholly as version 1, no table folder holds two files of a
// model, and a new write ends as an uninterrupted one. How many models
// each kill left new is logged.
func TestRegistryCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	old, want := registryData(60, 0), registryData(60, 1)
	clean := filepath.Join(t.TempDir(), "v0")
	putModels(t, clean, old)
	child := func(dir string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^TestRegistryCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), registryCrashEnv+"="+dir)
		return cmd
	}
	dir := filepath.Join(t.TempDir(), "calibrate")
	os.CopyFS(dir, os.DirFS(clean))
	wait := startChild(t, child(dir))
	start := time.Now()
	if out, err := wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	full := time.Since(start)
	sameModels(t, "uninterrupted", want, readModels(t, dir))
	for i, delay := range killMoments(testenv.Rand(t), registryKills, full) {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("kill-%02d", i))
		if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
			t.Fatal(err)
		}
		cmd := child(dir)
		wait := startChild(t, cmd)
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		wait()
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("kill %d after %v: check: %v", i, delay, err)
		}
		oneVersionPerRun(t, dir)
		got := readModels(t, dir)
		if len(got) != len(want) {
			t.Fatalf("kill %d: %d models, want %d", i, len(got), len(want))
		}
		fresh := 0
		for j := range got {
			switch {
			case reflect.DeepEqual(got[j], want[j]):
				fresh++
			case !reflect.DeepEqual(got[j], old[j]):
				t.Fatalf("kill %d: model %s is neither the old nor the new version: %+v", i, got[j].Name, got[j])
			}
		}
		t.Logf("kill %d after %v of %v: %d of %d models new", i, delay, full, fresh, len(want))
		putModels(t, dir, want)
		sameModels(t, fmt.Sprintf("kill %d, resumed", i), want, readModels(t, dir))
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("kill %d: after resuming: %v", i, err)
		}
		oneVersionPerRun(t, dir)
	}
}

// TestReadsArchiveWrittenByVersion2 reads testdata/archive/v2, written by
// runferry before format version 3 (see v2Dataset): it checks intact and
// reads back as written, with no model registry; a registry written into
// it then records the current version, keeps every run, and leaves snapshot 1
// readable as it was.
func TestReadsArchiveWrittenByVersion2(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "v2")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(testenv.RepoRoot(t), "testdata", "archive", "v2"))); err != nil {
		t.Fatal(err)
	}
	if v, _ := manifestVersion(t, dir); v != 2 {
		t.Fatalf("testdata/archive/v2 has format version %d", v)
	}
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
	d := v2Dataset()
	expectEqual(t, dir, d)
	if ms := readModels(t, dir); len(ms) != 0 {
		t.Fatalf("a version 2 archive read %d models", len(ms))
	}
	models := registryData(2, 0)
	putModels(t, dir, models)
	write(t, dir, d)
	expectEqual(t, dir, d)
	sameModels(t, "the registry written into a version 2 archive", models, readModels(t, dir))
	if v, snap := manifestVersion(t, dir); v != archive.FormatVersion || snap != 2 {
		t.Fatalf("after writing a registry: format version %d, snapshot %d; want %d and 2", v, snap, archive.FormatVersion)
	}
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenReader(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := r.RegisteredModels(); err != nil || len(ms) != 0 {
		t.Fatalf("snapshot 1: %d models (%v), want none", len(ms), err)
	}
}

// TestRefusesNewerFormat: a manifest of a newer format version, which may
// hold fields this version does not know, is refused as unsupported (not
// as damaged), by readers and writers alike.
func TestRefusesNewerFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	putModels(t, dir, registryData(1, 0))
	path := filepath.Join(dir, archive.ManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["format_version"] = archive.FormatVersion + 1
	m["traces_of_the_future"] = []string{}
	b, _ = json.Marshal(m)
	os.WriteFile(path, b, 0o644)
	want := fmt.Sprintf("archive format version %d is not supported (this runferry reads up to %d)", archive.FormatVersion+1, archive.FormatVersion)
	if _, err := archive.OpenReader(dir, 0); err == nil || !strings.Contains(err.Error(), want) || errors.Is(err, archive.ErrDamaged) {
		t.Fatalf("reader: %v, want %q", err, want)
	}
	if _, err := archive.OpenWriter(dir); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("writer: %v, want %q", err, want)
	}
}
