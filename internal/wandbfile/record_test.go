package wandbfile

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// recordWith wraps content as the record-type field of kind k.
func recordWith(num int64, k Kind, content []byte) []byte {
	rec := pbVarint(nil, recordFieldNum, uint64(num))
	return pbBytes(rec, protowire.Number(k), content)
}

func mustDecode(t *testing.T, payload []byte) Record {
	t.Helper()
	rec, err := Decode(payload)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return rec
}

func TestDecodeHistory(t *testing.T) {
	var h []byte
	h = pbBytes(h, 1, pbItem([]string{"_step"}, false, "7"))
	h = pbBytes(h, 1, pbItem([]string{"img", "_type"}, false, `"image-file"`))
	h = pbBytes(h, 1, pbItem([]string{"loss"}, true, "NaN"))
	h = pbBytes(h, 2, pbVarint(nil, 1, 7))
	h = pbString(h, 99, "unknown field, skipped")
	rec := mustDecode(t, recordWith(12, KindHistory, h))
	if rec.Kind != KindHistory || rec.Num != 12 || rec.History == nil {
		t.Fatalf("got %+v", rec)
	}
	want := []Item{
		{Key: "_step", ValueJSON: "7"},
		{NestedKey: []string{"img", "_type"}, ValueJSON: `"image-file"`},
		{NestedKey: []string{"loss"}, ValueJSON: "NaN"},
	}
	if !reflect.DeepEqual(rec.History.Items, want) {
		t.Errorf("items %+v, want %+v", rec.History.Items, want)
	}
	if step, ok := rec.History.StepValue(); !ok || step != 7 {
		t.Errorf("StepValue = %d, %v", step, ok)
	}
	if !reflect.DeepEqual(rec.History.Items[1].Path(), []string{"img", "_type"}) || rec.History.Items[0].Path()[0] != "_step" {
		t.Errorf("Path() wrong")
	}
	if !rec.History.Items[0].IsKey("_step") || rec.History.Items[1].IsKey("img") {
		t.Errorf("IsKey wrong")
	}
}

func TestHistoryStepFallback(t *testing.T) {
	h := pbBytes(nil, 1, pbItem([]string{"acc"}, false, "0.5"))
	h = pbBytes(h, 2, pbVarint(nil, 1, 41))
	rec := mustDecode(t, recordWith(1, KindHistory, h))
	if step, ok := rec.History.StepValue(); !ok || step != 41 {
		t.Errorf("StepValue = %d, %v; want step.num 41", step, ok)
	}
	rec = mustDecode(t, recordWith(1, KindHistory, pbBytes(nil, 1, pbItem([]string{"acc"}, false, "1"))))
	if _, ok := rec.History.StepValue(); ok {
		t.Errorf("StepValue ok without any step")
	}
}

func TestDecodeSummaryConfigStats(t *testing.T) {
	upd := pbBytes(nil, 1, pbItem([]string{"best"}, false, "0.9"))
	upd = pbBytes(upd, 2, pbItem([]string{"old"}, false, ""))
	s := mustDecode(t, recordWith(1, KindSummary, upd))
	if len(s.Summary.Update) != 1 || s.Summary.Update[0].Key != "best" || len(s.Summary.Remove) != 1 || s.Summary.Remove[0].Key != "old" {
		t.Errorf("summary %+v", s.Summary)
	}
	c := mustDecode(t, recordWith(1, KindConfig, upd))
	if len(c.Config.Update) != 1 || len(c.Config.Remove) != 1 {
		t.Errorf("config %+v", c.Config)
	}
	st := pbTimestamp(nil, 2, 1700000000, 500)
	st = pbBytes(st, 3, pbString(pbString(nil, 1, "cpu"), 16, "12.5"))
	stats := mustDecode(t, recordWith(1, KindStats, st))
	if !stats.Stats.Timestamp.Equal(time.Unix(1700000000, 500)) || len(stats.Stats.Items) != 1 || stats.Stats.Items[0].Key != "cpu" {
		t.Errorf("stats %+v", stats.Stats)
	}
}

func TestDecodeRun(t *testing.T) {
	var r []byte
	for num, v := range map[protowire.Number]string{1: "abc123", 2: "team", 3: "proj", 6: "grp", 7: "train", 8: "nice-name-1", 9: "notes", 12: "sweep", 13: "host", 16: "storage"} {
		r = pbString(r, num, v)
	}
	r = pbString(pbString(r, 10, "a"), 10, "b")
	r = pbBytes(r, 4, pbBytes(nil, 1, pbItem([]string{"lr"}, false, "0.1")))
	r = pbVarint(r, 14, 100)
	r = pbTimestamp(r, 17, 1650000000, 0)
	r = pbVarint(r, 18, 1)
	r = pbVarint(r, 20, 30)
	r = pbBytes(r, 21, pbString(pbString(nil, 1, "https://example.com/r.git"), 2, "deadbeef"))
	r = pbBytes(r, 23, pbDouble(pbString(nil, 1, "parent"), 2, 5.5))
	rec := mustDecode(t, recordWith(2, KindRun, r))
	got := rec.Run
	if got.RunID != "abc123" || got.Entity != "team" || got.Project != "proj" || got.Group != "grp" || got.JobType != "train" ||
		got.DisplayName != "nice-name-1" || got.Notes != "notes" || got.SweepID != "sweep" || got.Host != "host" || got.StorageID != "storage" {
		t.Errorf("strings: %+v", got)
	}
	if !reflect.DeepEqual(got.Tags, []string{"a", "b"}) || got.StartStep != 100 || !got.Resumed || got.Runtime != 30 {
		t.Errorf("tags/step/resumed/runtime: %+v", got)
	}
	if got.StartTime.Unix() != 1650000000 || got.GitRemote != "https://example.com/r.git" || got.GitCommit != "deadbeef" {
		t.Errorf("time/git: %+v", got)
	}
	if got.Config == nil || len(got.Config.Update) != 1 || got.BranchPoint == nil || got.BranchPoint.Value != 5.5 {
		t.Errorf("config/branch point: %+v", got)
	}
}

func TestDecodeSmallRecords(t *testing.T) {
	exit := mustDecode(t, recordWith(1, KindExit, pbVarint(pbVarint(nil, 1, 255), 2, 42)))
	if exit.Exit.ExitCode != 255 || exit.Exit.Runtime != 42 {
		t.Errorf("exit %+v", exit.Exit)
	}
	negative := mustDecode(t, recordWith(1, KindExit, pbVarint(nil, 1, uint64(0xFFFFFFFFFFFFFFFF))))
	if negative.Exit.ExitCode != -1 {
		t.Errorf("exit code -1 decoded as %d", negative.Exit.ExitCode)
	}
	out := mustDecode(t, recordWith(1, KindOutputRaw, pbString(pbVarint(nil, 1, 1), 3, "hello\r")))
	if out.Kind != KindOutputRaw || out.Output.Stream != Stdout || out.Output.Line != "hello\r" {
		t.Errorf("output_raw %+v", out.Output)
	}
	stderr := mustDecode(t, recordWith(1, KindOutput, pbString(nil, 3, "oops")))
	if stderr.Output.Stream != Stderr {
		t.Errorf("output without output_type is %v, want stderr", stderr.Output.Stream)
	}
	files := mustDecode(t, recordWith(1, KindFiles, pbBytes(nil, 1, pbVarint(pbString(nil, 1, "model.pt"), 2, 1))))
	if len(files.Files.Files) != 1 || files.Files.Files[0].Path != "model.pt" || files.Files.Files[0].Policy != PolicyEnd {
		t.Errorf("files %+v", files.Files)
	}
	header := mustDecode(t, recordWith(1, KindHeader, pbBytes(nil, 1, pbString(nil, 1, "0.25.0+abc"))))
	if header.Header.Producer != "0.25.0+abc" {
		t.Errorf("header %+v", header.Header)
	}
	metric := pbString(pbString(nil, 1, "val/loss"), 4, "epoch")
	metric = pbBytes(metric, 7, pbVarint(pbVarint(nil, 1, 1), 5, 1))
	metric = pbVarint(metric, 8, 1)
	m := mustDecode(t, recordWith(1, KindMetric, metric))
	if m.Metric.Name != "val/loss" || m.Metric.StepMetric != "epoch" || !reflect.DeepEqual(m.Metric.Summary, []string{"min", "last"}) || m.Metric.Goal != 1 {
		t.Errorf("metric %+v", m.Metric)
	}
	entry := pbVarint(pbString(pbString(nil, 1, "data.csv"), 2, "md5=="), 4, 1234)
	entry = pbString(pbString(pbString(pbString(entry, 3, "s3://b/k"), 5, "text/csv"), 6, "/stage/tmp1"), 7, "birth")
	art := pbString(pbString(pbString(nil, 4, "dataset"), 5, "train-data"), 6, "0123abcd")
	art = pbString(pbString(pbString(art, 11, "latest"), 11, "best"), 15, "client")
	art = pbString(pbString(art, 16, "seq"), 17, "base")
	manifest := pbBytes(pbString(pbVarint(nil, 1, 1), 2, "wandb-storage-policy-v1"), 4, entry)
	manifest = pbBytes(pbString(manifest, 5, "/stage/m.jsonl.gz"), 4, pbString(nil, 1, "b.txt"))
	art = pbBytes(art, 12, manifest)
	a := mustDecode(t, recordWith(1, KindArtifact, art))
	wantArt := &Artifact{Type: "dataset", Name: "train-data", Digest: "0123abcd", Aliases: []string{"latest", "best"},
		ClientID: "client", SequenceClientID: "seq", BaseID: "base", ManifestVersion: 1,
		StoragePolicy: "wandb-storage-policy-v1", ManifestFile: "/stage/m.jsonl.gz",
		Entries: []ArtifactEntry{
			{Path: "data.csv", Digest: "md5==", Ref: "s3://b/k", Size: 1234, LocalPath: "/stage/tmp1", Mimetype: "text/csv", BirthArtifactID: "birth"},
			{Path: "b.txt"},
		}}
	if !reflect.DeepEqual(a.Artifact, wantArt) {
		t.Errorf("artifact\n got %+v\nwant %+v", a.Artifact, wantArt)
	}
	useRec := pbString(pbString(pbString(nil, 1, "QXJ0aWZhY3Q6MQ=="), 2, "model"), 3, "m:v1")
	useRec = pbBytes(useRec, 4, pbString(nil, 1, "job-x"))
	use := mustDecode(t, recordWith(1, KindUseArtifact, useRec))
	if want := (&UseArtifact{ID: "QXJ0aWZhY3Q6MQ==", Type: "model", Name: "m:v1", JobName: "job-x"}); !reflect.DeepEqual(use.UseArtifact, want) {
		t.Errorf("use_artifact %+v, want %+v", use.UseArtifact, want)
	}
	if _, err := Decode(recordWith(1, KindArtifact, pbVarint(nil, 12, 3))); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("manifest with a wrong wire type: %v", err)
	}
	if _, err := Decode(recordWith(1, KindUseArtifact, pbVarint(nil, 4, 3))); err == nil || !strings.Contains(err.Error(), "use_artifact: field 4") {
		t.Errorf("partial with a wrong wire type: %v", err)
	}
	for _, k := range []Kind{KindFinal, KindFooter, KindPreempting, KindLinkArtifact, KindRequest} {
		if rec := mustDecode(t, recordWith(1, k, nil)); rec.Kind != k || rec.Content() != nil {
			t.Errorf("%v: got %+v", k, rec)
		}
	}
}

func TestDecodeUnknownAndOneof(t *testing.T) {
	unknown := mustDecode(t, recordWith(3, Kind(99), []byte{0xFF}))
	if unknown.Kind != 99 || unknown.Kind.String() != "unknown_99" || unknown.Kind.Known() {
		t.Errorf("unknown kind: %v", unknown.Kind)
	}
	// A later known member replaces an earlier one; an unknown field does
	// not replace a known one.
	payload := recordWith(1, KindExit, pbVarint(nil, 1, 2))
	payload = pbBytes(payload, protowire.Number(KindHeader), nil)
	payload = pbBytes(payload, 98, nil)
	rec := mustDecode(t, payload)
	if rec.Kind != KindHeader || rec.Exit != nil || rec.Header == nil {
		t.Errorf("oneof: got %+v", rec)
	}
	local := mustDecode(t, pbBytes(recordWith(1, KindHistory, nil), recordFieldControl, pbVarint(nil, 2, 1)))
	if !local.Local {
		t.Errorf("control.local not decoded")
	}
	if empty := mustDecode(t, nil); empty.Kind != KindNone || empty.Kind.String() != "none" {
		t.Errorf("empty record: %+v", empty)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := map[string][]byte{
		"history as varint":      pbVarint(nil, protowire.Number(KindHistory), 5),
		"run_id as varint":       recordWith(1, KindRun, pbVarint(nil, 1, 5)),
		"exit code as bytes":     recordWith(1, KindExit, pbString(nil, 1, "0")),
		"step as string":         recordWith(1, KindHistory, pbString(nil, 2, "x")),
		"truncated length":       {0x12, 0x05, 0x0A},
		"bad tag":                {0x00},
		"item key as fixed32":    recordWith(1, KindHistory, pbBytes(nil, 1, protowire.AppendFixed32(protowire.AppendTag(nil, 1, protowire.Fixed32Type), 1))),
		"timestamp nanos string": recordWith(1, KindStats, pbBytes(nil, 2, pbString(nil, 2, "x"))),
	}
	for name, payload := range tests {
		if _, err := Decode(payload); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := Decode(tests["run_id as varint"])
	if err == nil || !strings.Contains(err.Error(), "run") {
		t.Errorf("error %v does not name the record type", err)
	}
}

func TestKindString(t *testing.T) {
	for k, name := range kindNames {
		if k.String() != name {
			t.Errorf("%d: %q", k, k.String())
		}
	}
	if KindOutputRaw.String() != "output_raw" {
		t.Errorf("output_raw: %q", KindOutputRaw)
	}
}
