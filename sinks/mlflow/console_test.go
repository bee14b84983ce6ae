package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	pqsrc "github.com/runferry/runferry/sources/parquetdir"
)

// consoleLines returns n console lines of the run big, each of its own
// text, time and stream.
func consoleLines(n int) []schema.LogLine {
	out := make([]schema.LogLine, n)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = schema.LogLine{Time: base.Add(time.Duration(i) * time.Second).UnixMilli(), Stream: []string{"stdout", "stderr"}[i%3/2],
			Line: fmt.Sprintf("epoch %d: loss %.4f %s", i, 1/float64(i+1), strings.Repeat("=", i%7))}
	}
	return out
}

// withConsole returns sinktest.Grown's datasets with the console of the
// run that grows replaced: early lines of it, then grown.
func withConsole(early, grown int) (*dataset.Dataset, *dataset.Dataset) {
	e, g := sinktest.Grown()
	lines := consoleLines(grown)
	e.Runs[0].Logs, g.Runs[0].Logs = slices.Clone(lines[:early]), lines
	return e, g
}

// segmentLines cuts lines as the contract says the sink does (a segment
// ends at the first line boundary at or beyond limit bytes of JSON lines)
// and returns the number of lines of each segment.
func segmentLines(t *testing.T, lines []schema.LogLine, limit int) []int64 {
	t.Helper()
	var out []int64
	size, n := 0, int64(0)
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		size, n = size+len(b)+1, n+1
		if size >= limit {
			out, size, n = append(out, n), 0, 0
		}
	}
	if n > 0 {
		out = append(out, n)
	}
	return out
}

var consoleFile = regexp.MustCompile(`/(runferry/logs(\.[0-9]+)?\.jsonl|output(\.[0-9]+)?\.log)$`)

// consoleUploads returns the console files (segments and their plain
// text) that reqs uploaded to run id, sorted.
func consoleUploads(reqs []*recorded, id string) []string {
	var out []string
	for _, r := range reqs {
		if r.method != http.MethodPut || !strings.Contains(r.path, "/"+id+"/") {
			continue
		}
		if m := consoleFile.FindStringSubmatch(r.path); m != nil {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// runFiles returns every file of run id by path, with its bytes, but the
// copy of the run an append keeps while it runs (runferry/append-base/)
// and the coverage file (compared by the fields that describe the console).
func runFiles(t *testing.T, api *mlflowapi.Client, id string) (map[string]string, mlflowconv.Coverage) {
	t.Helper()
	ctx := context.Background()
	run, err := api.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var cov mlflowconv.Coverage
	for f, err := range api.ListArtifacts(ctx, id, "") {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(f.Path, mlflowconv.AppendBaseDir) {
			continue
		}
		body, err := api.OpenArtifact(ctx, id, run.Info.ArtifactURI, f.Path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Path == mlflowconv.CoveragePath {
			if err := json.Unmarshal(b, &cov); err != nil {
				t.Fatal(err)
			}
			continue
		}
		out[f.Path] = string(b)
	}
	return out, cov
}

// TestConsoleAppendedInSegments: into MLflow, which cannot append to a
// file, a run's console output is held in segments closed at a size limit
// (1 KiB here), so that an append of a console that grew sends only the
// last, partial segment and the new ones. A run copied with 50 lines (n1
// segments, at least 3, computed here from the rule) then appended to
// with 130 (n2 segments) sends, as the requests to the server show,
// segments n1-1 to n2-1 of runferry/logs*.jsonl and of output*.log, and
// none of those before; the report counts the lines sent and those kept. The appended run then holds the same files, byte
// for byte, as a fresh copy of the grown run, and the coverage file
// describes the console alike; check finds it equal to the source, and
// the MLflow source reads back the 130 lines exactly. A third copy with
// no console change sends no console file. Small logs keep one
// runferry/logs.jsonl and one output.log.
func TestConsoleAppendedInSegments(t *testing.T) {
	defer mlflow.SetLogSegmentBytes(1024)()
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	proxy := newRecordingProxy(t, srv.URL)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	early, grown := withConsole(50, 130)
	big := grown.Runs[0].Run.Origin.String()
	dst, read, _ := pair(t, proxy.srv.URL)
	opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return time.Millisecond }}
	copyOnce := func(ds *dataset.Dataset) transfer.RunResult {
		t.Helper()
		return copyRun(t, dst, opt, ds, big)
	}
	segs := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, mlflowconv.LogSegmentPath(i), mlflowconv.OutputSegmentPath(i))
		}
		slices.Sort(out)
		return out
	}

	seg1, seg2 := segmentLines(t, early.Runs[0].Logs, 1024), segmentLines(t, grown.Runs[0].Logs, 1024)
	n1, n2 := len(seg1), len(seg2)
	if n1 < 3 || n2 < n1+3 {
		t.Fatalf("fixture: %d segments early, %d grown; want at least 3, and 3 more", n1, n2)
	}
	var kept int64 // the lines of the closed segments of the first copy
	for _, n := range seg1[:n1-1] {
		kept += n
	}

	first := copyOnce(early)
	if got, want := consoleUploads(proxy.take(), first.DestID), segs(0, n1); !slices.Equal(got, want) {
		t.Fatalf("first copy uploaded console files %v, want %v", got, want)
	}
	_, cov1 := runFiles(t, api, first.DestID)
	if len(cov1.LogSegments) != n1 || cov1.LogSegments[0].Lines != seg1[0] {
		t.Fatalf("first copy: segments in the coverage file %+v, want %d, of %v lines", cov1.LogSegments, n1, seg1)
	}

	second := copyOnce(grown)
	if !second.Appended || second.DestID != first.DestID {
		t.Fatalf("second copy: appended %v to %s (%s); want appended to %s", second.Appended, second.DestID, second.Reason, first.DestID)
	}
	if got, want := consoleUploads(proxy.take(), first.DestID), segs(n1-1, n2); !slices.Equal(got, want) {
		t.Fatalf("the append uploaded console files %v, want %v (the first %d segments are held unchanged)", got, want, n1-1)
	}
	if second.KeptLogLines != kept || second.LogLines != 130-kept {
		t.Errorf("the append reported %d console lines sent and %d kept; want %d and %d", second.LogLines, second.KeptLogLines, 130-kept, kept)
	}
	appended, covA := runFiles(t, api, first.DestID)

	fresh, freshRead, _ := pair(t, srv.URL)
	freshRun := copyRun(t, fresh, transfer.Options{Backoff: func(int) time.Duration { return time.Millisecond }}, grown, big)
	want, covF := runFiles(t, api, freshRun.DestID)
	sameFiles(t, "appended", appended, want)
	if len(covF.LogSegments) != n2 || !slices.Equal(covA.LogSegments, covF.LogSegments) || covA.LogsDigest != covF.LogsDigest ||
		covA.LogLines != 130 || !slices.Equal(covA.Generated, covF.Generated) {
		t.Errorf("coverage of the console: appended %d lines %+v %s %v; fresh %+v %s %v", covA.LogLines, covA.LogSegments, covA.LogsDigest, covA.Generated,
			covF.LogSegments, covF.LogsDigest, covF.Generated)
	}
	for _, r := range []struct {
		name string
		read func() sources.Source
	}{{"appended", read}, {"fresh", freshRead}} {
		back := r.read()
		res, err := check.Run(ctx, memsrc.New(grown), back, check.Options{})
		if err != nil || len(res.Differences) > 0 {
			t.Errorf("check of the %s run: %v %v", r.name, err, res.Differences)
		}
		var lines []schema.LogLine
		for page, err := range back.(sources.LogReader).Logs(ctx, grown.Runs[0].Run.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, page...)
		}
		back.Close()
		if !slices.Equal(lines, grown.Runs[0].Logs) {
			t.Errorf("the MLflow source reads %d console lines of the %s run, want the 130 given", len(lines), r.name)
		}
	}

	// Round trip: the appended run, read by the MLflow source, into a
	// Parquet archive, which holds the 130 lines as given.
	dir := filepath.Join(t.TempDir(), "archive")
	pq, err := parquetdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(ctx, read(), pq, transfer.Options{}); err != nil || rep.Totals.Failed > 0 {
		t.Fatalf("MLflow to Parquet: %v %+v", err, rep.Runs)
	}
	pq.Close()
	arch, err := pqsrc.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	archived, err := dataset.Read(ctx, arch)
	arch.Close()
	if err != nil {
		t.Fatal(err)
	}
	var inArchive []schema.LogLine
	for _, rd := range archived.Runs {
		if rd.Run.Origin.String() == big {
			inArchive = rd.Logs
		}
	}
	if !slices.Equal(inArchive, grown.Runs[0].Logs) {
		t.Errorf("the archive holds %d console lines of the run, not the 130 given", len(inArchive))
	}

	// Nothing changed in the console (a tag did): no console file is sent.
	grown.Runs[0].Run.Tags = append(grown.Runs[0].Run.Tags, schema.Tag{Key: "later", Value: "yes"})
	third := copyOnce(grown)
	if got := consoleUploads(proxy.take(), first.DestID); !third.Appended || len(got) != 0 || third.KeptLogLines != 130 || third.LogLines != 0 {
		t.Errorf("third copy (console unchanged): appended %v, uploaded %v, %d lines sent, %d kept; want none sent, 130 kept", third.Appended, got, third.LogLines, third.KeptLogLines)
	}

	// The console shrunk to a small log (5 lines): the segments beyond
	// the first are deleted, and the run holds one runferry/logs.jsonl and
	// one output.log, as before segments, with no segment list in the
	// coverage file.
	_, small := withConsole(5, 5)
	if r := copyOnce(small); r.Appended {
		files, cov := runFiles(t, api, r.DestID)
		var console []string
		for p := range files {
			if consoleFile.MatchString("/" + p) {
				console = append(console, p)
			}
		}
		slices.Sort(console)
		if !slices.Equal(console, []string{"output.log", mlflowconv.LogsPath}) || cov.LogSegments != nil || cov.LogLines != 5 {
			t.Errorf("a small log is held as %v, segments %+v, %d lines; want output.log and %s alone", console, cov.LogSegments, cov.LogLines, mlflowconv.LogsPath)
		}
	} else {
		t.Errorf("the copy of the run with its console shrunk was not appended to: %s", r.Reason)
	}
}

// copyRun copies ds (through memsrc) into dst with opt and returns the
// result of the run whose origin is origin; the test fails when the copy
// fails, a run fails, or the report has no result for that run.
func copyRun(t *testing.T, dst sinks.Sink, opt transfer.Options, ds *dataset.Dataset, origin string) transfer.RunResult {
	t.Helper()
	rep, err := transfer.Copy(context.Background(), memsrc.New(ds), dst, opt)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	return resultOf(t, rep, origin)
}

// resultOf returns rep's result for the run whose origin is origin; the
// test fails when there is none.
func resultOf(t *testing.T, rep *transfer.Report, origin string) transfer.RunResult {
	t.Helper()
	for _, r := range rep.Runs {
		if r.Origin == origin {
			return r
		}
	}
	t.Fatalf("no result for run %s", origin)
	return transfer.RunResult{}
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sameFiles requires got, the files (runFiles) of the run an append
// wrote (what names it: "appended", "continued"), to be want, a fresh
// copy's: the same paths, each with the same bytes.
func sameFiles(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !slices.Equal(keysOf(got), keysOf(want)) {
		t.Errorf("the %s run holds\n%v\na fresh copy\n%v", what, keysOf(got), keysOf(want))
	}
	for p, b := range want {
		if got[p] != b {
			t.Errorf("file %s: the %s run's (%d bytes) differs from the fresh copy's (%d bytes)", p, what, len(got[p]), len(b))
		}
	}
}

// freshCopy copies ds, with no ledger, into a new experiment prefix on
// the MLflow server at url and returns the files and coverage (runFiles)
// of its run whose origin is origin.
func freshCopy(t *testing.T, url string, api *mlflowapi.Client, ds *dataset.Dataset, origin string) (map[string]string, mlflowconv.Coverage) {
	t.Helper()
	fresh, _, _ := pair(t, url)
	r := copyRun(t, fresh, transfer.Options{Backoff: func(int) time.Duration { return time.Millisecond }}, ds, origin)
	return runFiles(t, api, r.DestID)
}

// coverageRefusingProxy starts a proxy to the server at upstream, closed
// when the test ends, and returns its URL. While refuse is set it answers
// 400 to the upload of a run's coverage file (not the append base's
// copy), which leaves an append cut short; seen, when not nil, is called
// with every request passed on.
func coverageRefusingProxy(t *testing.T, upstream string, refuse *atomic.Bool, seen func(*http.Request)) string {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+mlflowconv.CoveragePath) && !strings.Contains(r.URL.Path, mlflowconv.AppendBaseDir) && refuse.Load() {
			http.Error(w, `{"error_code":"INVALID_PARAMETER_VALUE","message":"refused by the test"}`, http.StatusBadRequest)
			return
		}
		if seen != nil {
			seen(r)
		}
		r.Host = target.Host // MLflow refuses a Host it does not serve
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	return proxy.URL
}

// TestConsoleOldLayoutAppended: a copy whose console output is one
// runferry/logs.jsonl beyond the segment limit, as versions before
// segments wrote it (here: written with the default limit of 8 MiB, which
// gives that layout: one file, no segment list in the coverage file), is
// appended to after its console grew, with a limit of 1 KiB: the append
// rewrites the console once into segments (every segment sent, none
// kept), and the run then holds the same files as a fresh copy of the
// grown run; check passes and the lines read back are those given.
func TestConsoleOldLayoutAppended(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	early, grown := withConsole(50, 90)
	big := grown.Runs[0].Run.Origin.String()
	dst, read, _ := pair(t, srv.URL)
	opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return time.Millisecond }}
	copyTo := func(dst *mlflow.Sink, opt transfer.Options, ds *dataset.Dataset) transfer.RunResult {
		t.Helper()
		return copyRun(t, dst, opt, ds, big)
	}
	first := copyTo(dst, opt, early)
	files, cov := runFiles(t, api, first.DestID)
	if _, ok := files[mlflowconv.LogSegmentPath(1)]; ok || cov.LogSegments != nil || cov.LogLines != 50 {
		t.Fatalf("the first copy holds the console in segments (%+v); want one %s", cov.LogSegments, mlflowconv.LogsPath)
	}

	defer mlflow.SetLogSegmentBytes(1024)()
	n := len(segmentLines(t, grown.Runs[0].Logs, 1024))
	if n < 3 {
		t.Fatalf("fixture: %d segments grown, want at least 3", n)
	}
	second := copyTo(dst, opt, grown)
	if !second.Appended || second.DestID != first.DestID || second.KeptLogLines != 0 || second.LogLines != 90 {
		t.Fatalf("append to the old layout: appended %v to %s (%s), %d lines sent, %d kept; want appended to %s, all 90 sent",
			second.Appended, second.DestID, second.Reason, second.LogLines, second.KeptLogLines, first.DestID)
	}
	appended, covA := runFiles(t, api, first.DestID)
	want, covF := freshCopy(t, srv.URL, api, grown, big)
	sameFiles(t, "appended", appended, want)
	if len(covA.LogSegments) != n || !slices.Equal(covA.LogSegments, covF.LogSegments) || !slices.Equal(covA.Generated, covF.Generated) {
		t.Errorf("console segments: appended %+v %v, fresh %+v %v; want %d", covA.LogSegments, covA.Generated, covF.LogSegments, covF.Generated, n)
	}
	back := read()
	defer back.Close()
	res, err := check.Run(ctx, memsrc.New(grown), back, check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Errorf("check: %v %v", err, res.Differences)
	}
}

// TestDryRunOfAnAppendIntoMLflow: the dry run of a copy that appends to a
// run in MLflow counts what the copy then sends: the points beyond those
// held, the files new or changed (the copy's coverage file holds the
// digests of those it holds: sinks.HeldFilesLister) and the console
// lines of the segments that differ from those held
// (sinks.HeldLogsLister), with what is kept, equal field for field to the
// copy's report. Before, it counted every file and no console line.
func TestDryRunOfAnAppendIntoMLflow(t *testing.T) {
	defer mlflow.SetLogSegmentBytes(1024)()
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	early, grown := withConsole(50, 130)
	big := grown.Runs[0].Run.Origin.String()
	dst, _, _ := pair(t, srv.URL)
	ledger := &sinktest.MemLedger{}
	run := func(ds *dataset.Dataset, dry bool) transfer.RunResult {
		t.Helper()
		rep, err := transfer.Copy(ctx, memsrc.New(ds), dst, transfer.Options{Ledger: ledger, DryRun: dry, Backoff: func(int) time.Duration { return time.Millisecond }})
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("copy (dry run %v): %v %+v", dry, err, rep.Totals)
		}
		return resultOf(t, rep, big)
	}
	run(early, false)
	plan := run(grown, true)
	done := run(grown, false)
	if !done.Appended || done.KeptFiles == 0 || done.KeptLogLines == 0 || done.KeptPoints == 0 {
		t.Fatalf("the copy did not append keeping files, lines and points: %+v", done)
	}
	type counts struct {
		Appended                                    bool
		Points, KeptPoints, Files, Bytes, KeptFiles int64
		LogLines, KeptLogLines                      int64
		Reason                                      string
	}
	of := func(r transfer.RunResult) counts {
		return counts{r.Appended, r.Points, r.KeptPoints, r.Files, r.Bytes, r.KeptFiles, r.LogLines, r.KeptLogLines, r.Reason}
	}
	if plan.Outcome != transfer.Planned || of(plan) != of(done) {
		t.Errorf("the dry run planned %+v\nthe copy sent       %+v", of(plan), of(done))
	}
}

// TestConsoleAppendCutShortContinued: an append whose console segments
// were uploaded but whose coverage file was refused (the proxy answers
// 400 to it) fails, leaving the run incomplete with segments of the grown
// console; the next copy continues the append in place, sends every
// segment again (which of them the cut-short append rewrote is not known)
// and ends with the files of a fresh copy of the grown run; check passes.
func TestConsoleAppendCutShortContinued(t *testing.T) {
	defer mlflow.SetLogSegmentBytes(1024)()
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var refuse atomic.Bool
	var uploads atomic.Int64
	proxy := coverageRefusingProxy(t, srv.URL, &refuse, func(r *http.Request) {
		if r.Method == http.MethodPut && consoleFile.MatchString(r.URL.Path) {
			uploads.Add(1)
		}
	})
	early, grown := withConsole(50, 130)
	big := grown.Runs[0].Run.Origin.String()
	dst, read, _ := pair(t, proxy)
	opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return time.Millisecond }}
	result := func(rep *transfer.Report) transfer.RunResult {
		t.Helper()
		return resultOf(t, rep, big)
	}
	rep, err := transfer.Copy(ctx, memsrc.New(early), dst, opt)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("first copy: %v %+v", err, rep.Totals)
	}
	first := result(rep)
	refuse.Store(true)
	rep, _ = transfer.Copy(ctx, memsrc.New(grown), dst, opt)
	if r := result(rep); r.Outcome != transfer.Failed {
		t.Fatalf("the append with its coverage file refused: %s (%s), want failed", r.Outcome, r.Error)
	}
	refuse.Store(false)
	uploads.Store(0)
	rep, err = transfer.Copy(ctx, memsrc.New(grown), dst, opt)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("continued copy: %v %+v", err, rep.Totals)
	}
	second := result(rep)
	n := len(segmentLines(t, grown.Runs[0].Logs, 1024))
	if !second.Appended || second.DestID != first.DestID || second.KeptLogLines != 0 || uploads.Load() != int64(2*n) {
		t.Errorf("continued append: appended %v to %s (%s), %d lines kept, %d console files sent; want appended to %s, every one of the %d segments and its text sent",
			second.Appended, second.DestID, second.Reason, second.KeptLogLines, uploads.Load(), first.DestID, n)
	}
	appended, covA := runFiles(t, api, first.DestID)
	want, covF := freshCopy(t, srv.URL, api, grown, big)
	sameFiles(t, "continued", appended, want)
	if !slices.Equal(covA.LogSegments, covF.LogSegments) {
		t.Errorf("segments: continued %+v, fresh %+v", covA.LogSegments, covF.LogSegments)
	}
	back := read()
	defer back.Close()
	res, err := check.Run(ctx, memsrc.New(grown), back, check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Errorf("check: %v %v", err, res.Differences)
	}
}
