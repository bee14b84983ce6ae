package mlflow_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"iter"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
)

// outputLogUploads returns the files output.log, output.1.log, ... that
// reqs uploaded to run id, sorted.
func outputLogUploads(reqs []*recorded, id string) []string {
	var out []string
	for _, u := range consoleUploads(reqs, id) {
		if strings.HasPrefix(u, "output") {
			out = append(out, u)
		}
	}
	return out
}

// outputSegmentSizes cuts b as the contract says the sink cuts a source's
// own output.log (a segment ends at the first line boundary at or beyond
// limit bytes) and returns each segment's size.
func outputSegmentSizes(b []byte, limit int) []int64 {
	var out []int64
	size := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			i = len(b) - 1
		}
		size += i + 1
		b = b[i+1:]
		if size >= limit || len(b) == 0 {
			out, size = append(out, int64(size)), 0
		}
	}
	return out
}

// artifactsOf lists the files of run origin in src, once its runs are
// listed (as the engine does before reading a run).
func artifactsOf(t *testing.T, src sources.Source, origin schema.Ref) iter.Seq2[schema.Artifact, error] {
	t.Helper()
	ctx := context.Background()
	found := false
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			found = found || r.Origin == origin
		}
	}
	if !found {
		t.Fatalf("the MLflow source does not list run %s", origin)
	}
	return src.(sources.ArtifactLister).Artifacts(ctx, origin)
}

func outputPaths(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, mlflowconv.OutputSegmentPath(i))
	}
	slices.Sort(out)
	return out
}

// sdkOutputLog has the real wandb SDK (offline, sinktest.GrowWandb) write
// steps 0-4 of run id under dir and returns the path of the run's
// files/output.log, which the tests then grow.
func sdkOutputLog(t *testing.T, dir, id string) string {
	t.Helper()
	sinktest.GrowWandb(t, dir, id, 0, 5)
	logs, err := filepath.Glob(filepath.Join(dir, "wandb", "*run-*-"+id, "files", "output.log"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("the SDK's output.log: %v %v", logs, err)
	}
	return logs[0]
}

// logGrower returns grow, which appends n lines to the file at path,
// line(i) (without its newline) for the i-th line appended through it,
// counted from 0 across calls, and returns the whole file after.
func logGrower(t *testing.T, path string, line func(i int) string) (grow func(n int) []byte) {
	next := 0
	return func(n int) []byte {
		t.Helper()
		var b []byte
		for range n {
			b = append(append(b, line(next)...), '\n')
			next++
		}
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		whole, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return whole
	}
}

// syncInto returns the sinktest.Growing that syncs the W&B folder dir
// into dst with ledger, check reading dst back through read.
func syncInto(dir string, ledger transfer.Ledger, dst sinks.Sink, read func() sources.Source) *sinktest.Growing {
	return &sinktest.Growing{Dir: dir, Ledger: ledger,
		Sink: func(*testing.T) (sinks.Sink, func() error) { return dst, nil },
		Read: func(*testing.T) sources.Source { return read() }}
}

// freshFolderCopy syncs the W&B folder dir, with a ledger of its own, into
// a new experiment prefix on the MLflow server at url (check included:
// sinktest.Growing.Sync) and returns that copy's run's files and coverage
// (runFiles) and a reader of the copy.
func freshFolderCopy(t *testing.T, url string, api *mlflowapi.Client, dir string) (map[string]string, mlflowconv.Coverage, func() sources.Source) {
	t.Helper()
	fresh, read, _ := pair(t, url)
	r := syncInto(dir, &sinktest.MemLedger{}, fresh, read).Sync(t)
	files, cov := runFiles(t, api, r.DestID)
	return files, cov, read
}

// listedFile is a file as the MLflow source lists and reads it.
type listedFile struct {
	size int64  // the size listed
	body []byte // the bytes read
}

// readListed lists the files of run origin through the MLflow source that
// read opens and reads those whose path keep accepts; a path listed twice
// fails the test.
func readListed(t *testing.T, read func() sources.Source, origin schema.Ref, keep func(path string) bool) map[string]listedFile {
	t.Helper()
	src := read()
	defer src.Close()
	out := map[string]listedFile{}
	for a, err := range artifactsOf(t, src, origin) {
		if err != nil {
			t.Fatal(err)
		}
		if !keep(a.Path) {
			continue
		}
		if _, dup := out[a.Path]; dup {
			t.Errorf("the MLflow source lists %s twice", a.Path)
		}
		body, err := a.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[a.Path] = listedFile{size: a.Size, body: b}
	}
	return out
}

// requireOutputLog requires the MLflow source that read opens to list run
// origin's output.log once, whole (want, by size listed and by SHA-256 of
// the bytes read), and no output.N.log.
func requireOutputLog(t *testing.T, read func() sources.Source, origin schema.Ref, want []byte) {
	t.Helper()
	got := readListed(t, read, origin, func(p string) bool { return strings.HasPrefix(p, "output.") })
	for p := range got {
		if p != "output.log" {
			t.Errorf("the MLflow source lists %s", p)
		}
	}
	a, ok := got["output.log"]
	if !ok {
		t.Errorf("the MLflow source does not list output.log")
		return
	}
	if a.size != int64(len(want)) || sha256.Sum256(a.body) != sha256.Sum256(want) {
		t.Errorf("the MLflow source reads output.log of %d bytes (listed %d), sha256 %x; the folder's is %d bytes, %x",
			len(a.body), a.size, sha256.Sum256(a.body), len(want), sha256.Sum256(want))
	}
}

// TestSourceOutputLogAppendedInSegments: a real W&B folder (the SDK,
// offline) whose files/output.log grows between syncs, as a live run's
// does, synced into MLflow with 1 KiB segments. The first sync holds the
// file in n1 segments (output.log, output.1.log, ...: the sizes the rule
// gives); the second, after the file grew to n2 segments, appends to the
// same run and uploads, as the requests to the server show, only segments
// n1-1 to n2-1; a third with the file unchanged uploads none (the file is
// counted as kept). After each sync check finds the run equal to the W&B
// run; the MLflow source reads output.log back whole, byte for byte (size
// and SHA-256) the folder's file, and lists no output.N.log; the appended
// run holds the same files, byte for byte, as a fresh copy of the grown
// folder, and its coverage file the same segments. The dry run's held
// files (HeldFilesLister) give the whole file's SHA-256.
func TestSourceOutputLogAppendedInSegments(t *testing.T) {
	defer mlflow.SetLogSegmentBytes(1024)()
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	proxy := newRecordingProxy(t, srv.URL)
	dir := t.TempDir()
	outputLog := sdkOutputLog(t, dir, "outl0001")
	grow := logGrower(t, outputLog, func(i int) string {
		return fmt.Sprintf("train step %d: loss %.5f %s", i, 1/float64(i+1), strings.Repeat("#", i%11))
	})
	dst, read, _ := pair(t, proxy.srv.URL)
	g := syncInto(dir, &sinktest.MemLedger{}, dst, read)

	b1 := grow(120)
	sz1 := outputSegmentSizes(b1, 1024)
	first := g.Sync(t)
	origin, _ := schema.ParseRef(first.Origin)
	n1 := len(sz1)
	if got, want := outputLogUploads(proxy.take(), first.DestID), outputPaths(0, n1); n1 < 3 || !slices.Equal(got, want) {
		t.Fatalf("first sync uploaded %v, want %v", got, want)
	}
	_, cov1 := runFiles(t, api, first.DestID)
	if len(cov1.OutputSegments) != n1 || cov1.OutputSegments[0].Bytes != sz1[0] || slices.Contains(cov1.Generated, "output.log") {
		t.Fatalf("first sync: output segments %+v (generated %v), want %d of sizes %v", cov1.OutputSegments, cov1.Generated, n1, sz1)
	}
	requireOutputLog(t, read, origin, b1)

	b2 := grow(150)
	sz2 := outputSegmentSizes(b2, 1024)
	n2 := len(sz2)
	if n2 < n1+3 {
		t.Fatalf("fixture: %d segments, then %d; want 3 more", n1, n2)
	}
	second := g.Sync(t)
	if !second.Appended || second.DestID != first.DestID {
		t.Fatalf("second sync: appended %v to %s (%s); want appended to %s", second.Appended, second.DestID, second.Reason, first.DestID)
	}
	if got, want := outputLogUploads(proxy.take(), first.DestID), outputPaths(n1-1, n2); !slices.Equal(got, want) {
		t.Fatalf("the append uploaded %v, want %v (the first %d segments are held unchanged)", got, want, n1-1)
	}
	requireOutputLog(t, read, origin, b2)
	appended, covA := runFiles(t, api, first.DestID)

	// A fresh copy of the grown folder holds the same files and segments.
	want, covF, freshRead := freshFolderCopy(t, srv.URL, api, dir)
	sameFiles(t, "appended", appended, want)
	if len(covF.OutputSegments) != n2 || !slices.Equal(covA.OutputSegments, covF.OutputSegments) ||
		covA.FileDigests["output.log"] != covF.FileDigests["output.log"] || covA.FileDigests["output.log"] != fmt.Sprintf("sha256:%x", sha256.Sum256(b2)) {
		t.Errorf("output segments: appended %+v %s; fresh %+v %s; the file's sha256 %x", covA.OutputSegments, covA.FileDigests["output.log"],
			covF.OutputSegments, covF.FileDigests["output.log"], sha256.Sum256(b2))
	}
	requireOutputLog(t, freshRead, origin, b2)

	// The dry run's held files: the whole file, by its SHA-256.
	run, err := api.GetRun(ctx, first.DestID)
	if err != nil {
		t.Fatal(err)
	}
	mark, _ := run.Tag(mlflowconv.TagMark)
	held, ok, err := dst.HeldFiles(ctx, origin, sinks.AppendBase{Mark: mark, DestID: first.DestID})
	if err != nil || !ok || held["output.log"].SHA256 != fmt.Sprintf("%x", sha256.Sum256(b2)) {
		t.Errorf("HeldFiles: %v %v output.log %+v, want sha256 %x", err, ok, held["output.log"], sha256.Sum256(b2))
	}

	// Nothing changed in output.log, but the folder did (a file added):
	// no segment is sent, the file counted as kept.
	if err := os.WriteFile(filepath.Join(filepath.Dir(outputLog), "notes.txt"), []byte("later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third := g.Sync(t)
	if got := outputLogUploads(proxy.take(), first.DestID); !third.Appended || len(got) != 0 || third.KeptFiles == 0 {
		t.Errorf("third sync (output.log unchanged): appended %v, uploaded %v, %d files kept", third.Appended, got, third.KeptFiles)
	}
	requireOutputLog(t, read, origin, b2)
}

// TestSourceOutputLogOldLayoutAppended: a copy holding the source's
// output.log whole (as every copy before segments, made here with the
// segment size at its default) is appended to, after the file grew past
// several segments, correctly: rewritten once into segments (every
// segment sent), the result equal to a fresh copy, check clean, read back
// whole; the next growth sends only the last segments.
func TestSourceOutputLogOldLayoutAppended(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	proxy := newRecordingProxy(t, srv.URL)
	dir := t.TempDir()
	grow := logGrower(t, sdkOutputLog(t, dir, "outl0002"), func(i int) string {
		return fmt.Sprintf("eval %d: acc %.4f %s", i, float64(i)/1000, strings.Repeat("*", i%5))
	})
	dst, read, _ := pair(t, proxy.srv.URL)
	g := syncInto(dir, &sinktest.MemLedger{}, dst, read)

	grow(100)
	first := g.Sync(t) // 8 MiB segments: output.log whole
	if got := outputLogUploads(proxy.take(), first.DestID); !slices.Equal(got, []string{"output.log"}) {
		t.Fatalf("first sync uploaded %v, want output.log whole", got)
	}
	if _, cov := runFiles(t, api, first.DestID); cov.OutputSegments != nil {
		t.Fatalf("first sync: output segments %+v, want none", cov.OutputSegments)
	}

	restore := mlflow.SetLogSegmentBytes(1024)
	defer restore()
	b2 := grow(100)
	n2 := len(outputSegmentSizes(b2, 1024))
	second := g.Sync(t)
	if !second.Appended || second.DestID != first.DestID {
		t.Fatalf("second sync: appended %v to %s (%s)", second.Appended, second.DestID, second.Reason)
	}
	if got, want := outputLogUploads(proxy.take(), first.DestID), outputPaths(0, n2); n2 < 3 || !slices.Equal(got, want) {
		t.Fatalf("the append to the whole-file copy uploaded %v, want every segment %v", got, want)
	}
	appended, covA := runFiles(t, api, first.DestID)
	want, covF, _ := freshFolderCopy(t, srv.URL, api, dir)
	sameFiles(t, "appended", appended, want)
	if !slices.Equal(covA.OutputSegments, covF.OutputSegments) || len(covA.OutputSegments) != n2 {
		t.Errorf("the appended run's segments %+v; a fresh copy's %+v; want %d", covA.OutputSegments, covF.OutputSegments, n2)
	}
	origin, _ := schema.ParseRef(first.Origin)
	requireOutputLog(t, read, origin, b2)

	b3 := grow(60)
	n3 := len(outputSegmentSizes(b3, 1024))
	third := g.Sync(t)
	if got, want := outputLogUploads(proxy.take(), first.DestID), outputPaths(n2-1, n3); !third.Appended || !slices.Equal(got, want) {
		t.Errorf("third sync: appended %v, uploaded %v, want %v", third.Appended, got, want)
	}
}

// TestSourceOutputLogAppendCutShortContinued: a W&B folder's output.log
// held in n1 segments grows to n2; the append sends the segments but its
// coverage file is refused (the proxy answers 400), so the run is left
// incomplete holding output.(n1-1).log of the grown file and
// output.n1.log ... output.(n2-1).log. The file is then put back as it
// was at the first sync (the whole digest the copy extended recorded):
// the continued append sends every segment again (the one the cut-short
// append rewrote would otherwise be kept by its digest) and deletes the
// segments it wrote beyond, ending with the files of a fresh copy; check
// passes and output.log reads back as the folder's.
func TestSourceOutputLogAppendCutShortContinued(t *testing.T) {
	defer mlflow.SetLogSegmentBytes(1024)()
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var refuse atomic.Bool
	rec := newRecordingProxy(t, srv.URL)
	proxy := coverageRefusingProxy(t, rec.srv.URL, &refuse, nil)
	dir := t.TempDir()
	outputLog := sdkOutputLog(t, dir, "outl0003")
	sdk, err := os.ReadFile(outputLog) // as the SDK wrote it
	if err != nil {
		t.Fatal(err)
	}
	write := func(n int) []byte {
		t.Helper()
		b := bytes.Clone(sdk)
		for i := range n {
			b = fmt.Appendf(b, "step %d: lr %.6f %s\n", i, 0.1/float64(i+1), strings.Repeat("~", i%9))
		}
		if err := os.WriteFile(outputLog, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	dst, read, _ := pair(t, proxy)
	ledger := &sinktest.MemLedger{}
	g := syncInto(dir, ledger, dst, read)
	b1 := write(100)
	n1 := len(outputSegmentSizes(b1, 1024))
	first := g.Sync(t)
	n2 := len(outputSegmentSizes(write(200), 1024))
	if n1 < 3 || n2 < n1+2 {
		t.Fatalf("fixture: %d segments, then %d", n1, n2)
	}
	rec.take()
	refuse.Store(true)
	src := sinktest.OpenWandb(t, dir)
	rep, _ := transfer.Copy(ctx, src, dst, transfer.Options{Ledger: ledger, Backoff: func(int) time.Duration { return time.Millisecond }})
	src.Close()
	if len(rep.Runs) != 1 || rep.Runs[0].Outcome != transfer.Failed {
		t.Fatalf("the append with its coverage file refused: %+v, want failed", rep.Runs)
	}
	if got, want := outputLogUploads(rec.take(), first.DestID), outputPaths(n1-1, n2); !slices.Equal(got, want) {
		t.Fatalf("the cut-short append uploaded %v, want %v", got, want)
	}
	refuse.Store(false)

	if !bytes.Equal(write(100), b1) {
		t.Fatal("fixture: the file put back differs")
	}
	second := g.Sync(t)
	if got, want := outputLogUploads(rec.take(), first.DestID), outputPaths(0, n1); !second.Appended || second.DestID != first.DestID || !slices.Equal(got, want) {
		t.Errorf("continued append: appended %v to %s (%s), uploaded %v; want appended to %s, every segment %v sent",
			second.Appended, second.DestID, second.Reason, got, first.DestID, want)
	}
	appended, covA := runFiles(t, api, first.DestID)
	want, covF, _ := freshFolderCopy(t, srv.URL, api, dir)
	sameFiles(t, "continued", appended, want)
	if !slices.Equal(covA.OutputSegments, covF.OutputSegments) {
		t.Errorf("segments: continued %+v, fresh %+v", covA.OutputSegments, covF.OutputSegments)
	}
	origin, _ := schema.ParseRef(first.Origin)
	requireOutputLog(t, read, origin, b1)
}

// TestSourceOutputLogAppendBytes measures, at the real segment size
// (8 MiB), the bytes of a W&B folder's own output.log an append sends
// into MLflow: the SDK's folder with its output.log grown to about 23 MB
// (500,000 lines) is synced, then synced again after 1,000 more lines,
// through a recording proxy that sums the bodies uploaded to output*.log
// (and, apart, to runferry/logs*.jsonl). It requires the append to send
// at most two segments of output.log, and logs the sizes
// (docs/BENCHMARKS.md, "Console output into MLflow"). It runs only with
// RUNFERRY_MEASURE_CONSOLE=1.
func TestSourceOutputLogAppendBytes(t *testing.T) {
	if os.Getenv("RUNFERRY_MEASURE_CONSOLE") == "" {
		t.Skip("a measurement: RUNFERRY_MEASURE_CONSOLE=1 runs it")
	}
	srv := testenv.SharedMLflow(t)
	proxy := newRecordingProxy(t, srv.URL)
	dir := t.TempDir()
	growLog := logGrower(t, sdkOutputLog(t, dir, "outl0004"), func(i int) string {
		return fmt.Sprintf("step %d: loss %.6f lr %.6f %s", i, 1/float64(i+1), 0.1/float64(i%100+1), strings.Repeat("=", i%13))
	})
	grow := func(n int) int64 { return int64(len(growLog(n))) }
	dst, read, _ := pair(t, proxy.srv.URL)
	g := syncInto(dir, &sinktest.MemLedger{}, dst, read)
	sent := func() (out, jsonl int64, files int) {
		for _, req := range proxy.take() {
			if req.method != http.MethodPut || strings.Contains(req.path, "/append-base/") {
				continue
			}
			if m := consoleFile.FindStringSubmatch(req.path); m != nil {
				if strings.HasPrefix(m[1], "output") {
					out += int64(len(req.body))
					files++
				} else {
					jsonl += int64(len(req.body))
				}
			}
		}
		return out, jsonl, files
	}
	size1 := grow(500_000)
	start := time.Now()
	g.Sync(t)
	d1 := time.Since(start)
	out1, json1, f1 := sent()
	size2 := grow(1_000)
	start = time.Now()
	second := g.Sync(t)
	d2 := time.Since(start)
	out2, json2, f2 := sent()
	t.Logf("output.log %d bytes: first sync sent %d files, %d bytes of output*.log (%d of runferry/logs*.jsonl) in %v; "+
		"grown to %d bytes (1,000 lines), the append sent %d files, %d bytes of output*.log (%d of runferry/logs*.jsonl) in %v (appended %v)",
		size1, f1, out1, json1, d1.Round(time.Millisecond), size2, f2, out2, json2, d2.Round(time.Millisecond), second.Appended)
	if !second.Appended || f2 > 2 || out2 > 2*(8<<20+200) {
		t.Fatalf("the append sent %d files of output.log, %d bytes; want at most two segments", f2, out2)
	}
}
