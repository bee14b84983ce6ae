package wandbfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// projectPython is the project venv's interpreter, relative to this package.
const projectPython = "../../.venv/bin/python"

// TestCrossCheckWithWandbProtobuf compares this package with an independent
// reader: testdata/wandb_oracle.py frames every sample file itself and
// decodes the records with the wandb SDK's own protobuf classes. Every
// record must have the same offset, kind, sequence number and digest of
// fields, and damage the same offsets.
func TestCrossCheckWithWandbProtobuf(t *testing.T) {
	dir := requireSamples(t)
	if testing.Short() {
		t.Skip("starts Python")
	}
	if err := exec.Command(projectPython, "-c", "import wandb.proto.wandb_internal_pb2").Run(); err != nil {
		t.Skipf("needs %s with the wandb package (make venv): %v", projectPython, err)
	}
	var files []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(path, ".wandb") {
			files = append(files, path)
		}
		return nil
	})
	var stderr bytes.Buffer
	cmd := exec.Command(projectPython, append([]string{"testdata/wandb_oracle.py"}, files...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle: %v\n%s", err, stderr.String())
	}
	want := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			File string `json:"file"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("oracle line %q: %v", sc.Text(), err)
		}
		want[line.File] = append(want[line.File], canonicalJSON(t, sc.Bytes()))
	}
	compared := 0
	for _, path := range files {
		got := crossCheckLines(t, path)
		if len(got) != len(want[path]) {
			t.Errorf("%s: %d lines, oracle %d", path, len(got), len(want[path]))
			continue
		}
		for i := range got {
			if got[i] != want[path][i] {
				t.Errorf("%s: line %d differs:\n go:     %.400s\n oracle: %.400s", path, i, got[i], want[path][i])
				break
			}
			compared++
		}
	}
	t.Logf("compared %d lines from %d files", compared, len(files))
}

// canonicalJSON re-encodes a JSON document with sorted keys.
func canonicalJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// crossCheckLines produces this package's version of the oracle's lines.
func crossCheckLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	emit := func(v map[string]any) {
		v["file"] = path
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, canonicalJSON(t, b))
	}
	seen := 0
	for {
		payload, offset, err := r.Next()
		for _, d := range r.Damage()[seen:] {
			emit(map[string]any{"offset": d.Offset, "damage": true})
		}
		seen = len(r.Damage())
		if errors.Is(err, io.EOF) {
			return lines
		}
		if err != nil {
			t.Fatal(err)
		}
		rec, err := Decode(payload)
		if err != nil {
			t.Fatalf("%s: offset %d: %v", path, offset, err)
		}
		emit(map[string]any{"offset": offset, "kind": rec.Kind.String(), "num": rec.Num, "digest": digestRecord(rec)})
	}
}

// digestRecord mirrors digest() in testdata/wandb_oracle.py.
func digestRecord(rec Record) map[string]any {
	switch rec.Kind {
	case KindHistory:
		return map[string]any{"items": itemDigest(rec.History.Items), "step": rec.History.Step}
	case KindSummary:
		return map[string]any{"update": itemDigest(rec.Summary.Update), "remove": itemDigest(rec.Summary.Remove)}
	case KindConfig:
		return map[string]any{"update": itemDigest(rec.Config.Update), "remove": itemDigest(rec.Config.Remove)}
	case KindStats:
		return map[string]any{"items": itemDigest(rec.Stats.Items), "seconds": unixSeconds(rec.Stats.Timestamp)}
	case KindOutput, KindOutputRaw:
		o := rec.Output
		return map[string]any{"stream": int32(o.Stream), "line": o.Line, "seconds": unixSeconds(o.Timestamp)}
	case KindRun:
		r := rec.Run
		var config []Item
		if r.Config != nil {
			config = r.Config.Update
		}
		return map[string]any{"run_id": r.RunID, "entity": r.Entity, "project": r.Project,
			"display_name": r.DisplayName, "notes": r.Notes, "group": r.Group, "job_type": r.JobType,
			"tags": nonNil(r.Tags), "git_remote": r.GitRemote, "git_commit": r.GitCommit,
			"config": itemDigest(config), "seconds": unixSeconds(r.StartTime), "resumed": r.Resumed}
	case KindExit:
		return map[string]any{"exit_code": rec.Exit.ExitCode, "runtime": rec.Exit.Runtime}
	case KindMetric:
		m := rec.Metric
		return map[string]any{"name": m.Name, "glob_name": m.GlobName, "step_metric": m.StepMetric}
	case KindFiles:
		paths, policies := []string{}, []int32{}
		for _, f := range rec.Files.Files {
			paths, policies = append(paths, f.Path), append(policies, int32(f.Policy))
		}
		return map[string]any{"paths": paths, "policies": policies}
	case KindArtifact:
		a := rec.Artifact
		entries := [][]any{}
		for _, e := range a.Entries {
			entries = append(entries, []any{e.Path, e.Digest, e.Size, e.Ref, e.LocalPath, e.BirthArtifactID})
		}
		return map[string]any{"name": a.Name, "type": a.Type, "digest": a.Digest, "aliases": nonNil(a.Aliases),
			"client_id": a.ClientID, "sequence_client_id": a.SequenceClientID,
			"manifest": []any{a.ManifestVersion, a.StoragePolicy, a.ManifestFile}, "entries": entries}
	case KindUseArtifact:
		u := rec.UseArtifact
		return map[string]any{"id": u.ID, "type": u.Type, "name": u.Name, "job_name": u.JobName}
	case KindEnvironment:
		e := rec.Environment
		return map[string]any{"program": e.Program, "args": nonNil(e.Args), "python": e.Python, "os": e.OS}
	case KindHeader:
		return map[string]any{"producer": rec.Header.Producer}
	case KindTelemetry:
		return map[string]any{"cli_version": rec.Telemetry.CLIVersion, "python_version": rec.Telemetry.PythonVersion}
	}
	return map[string]any{}
}

func itemDigest(items []Item) [][]any {
	out := [][]any{}
	for _, it := range items {
		out = append(out, []any{it.Path(), it.ValueJSON})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// unixSeconds is the Timestamp seconds, 0 for an absent timestamp as in
// Python's protobuf.
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
