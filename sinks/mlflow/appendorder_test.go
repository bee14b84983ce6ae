package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/sinktest"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// recorded is one request a recordingProxy passed on: when it was sent
// and when its answer came back, on one sequence shared by all requests,
// so that "a before b" means a's answer came before b was sent.
type recorded struct {
	start, end int64
	method     string
	path       string // below /api/2.0/
	body       []byte
	code       int // the answer's HTTP status
}

// recordingProxy is a reverse proxy in front of a real MLflow server that
// records every request it passes on, in the order the sink sent them.
type recordingProxy struct {
	mu   sync.Mutex
	seq  int64
	reqs []*recorded
	srv  *httptest.Server
}

func newRecordingProxy(t *testing.T, base string) *recordingProxy {
	t.Helper()
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.seq++
		rec := &recorded{start: p.seq, method: r.Method, path: strings.TrimPrefix(r.URL.Path, "/api/2.0/"), body: body}
		p.reqs = append(p.reqs, rec)
		p.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r.Host = target.Host // MLflow refuses a Host it does not serve
		rp.ServeHTTP(sw, r)
		p.mu.Lock()
		p.seq++
		rec.end, rec.code = p.seq, sw.status
		p.mu.Unlock()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// take returns the requests recorded since the last take and forgets them.
func (p *recordingProxy) take() []*recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.reqs
	p.reqs = nil
	return out
}

// runWrite is a write request to one run, as the order assertions see it.
type runWrite struct {
	*recorded
	kind     string // "points", "tags", "params", "delete-tag", "update", "file", "delete-file", other paths
	tags     map[string]string
	delTag   string
	status   string // runs/update's status
	endTime  int64  // runs/update's end time (0: none)
	metricsN int
}

// writesTo returns the requests of reqs that change run id, in the order
// they were sent. Reads (GET, searches) are left out.
func writesTo(t *testing.T, reqs []*recorded, id string) []runWrite {
	t.Helper()
	var out []runWrite
	for _, r := range reqs {
		if r.method == http.MethodGet || strings.HasSuffix(r.path, "/search") {
			continue
		}
		if strings.HasPrefix(r.path, "mlflow-artifacts/artifacts/") {
			if !strings.Contains(r.path, "/"+id+"/") {
				continue
			}
			w := runWrite{recorded: r, kind: "file"}
			if r.method == http.MethodDelete {
				w.kind = "delete-file"
			}
			out = append(out, w)
			continue
		}
		var body struct {
			RunID   string             `json:"run_id"`
			Key     string             `json:"key"`
			Value   string             `json:"value"`
			Status  string             `json:"status"`
			EndTime *int64             `json:"end_time"`
			Metrics []mlflowapi.Metric `json:"metrics"`
			Params  []mlflowapi.Param  `json:"params"`
			Tags    []mlflowapi.Tag    `json:"tags"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.RunID != id {
			continue
		}
		w := runWrite{recorded: r, kind: strings.TrimPrefix(r.path, "mlflow/")}
		switch w.kind {
		case "runs/log-batch":
			switch {
			case len(body.Metrics) > 0:
				w.kind, w.metricsN = "points", len(body.Metrics)
			case len(body.Params) > 0:
				w.kind = "params"
			default:
				w.kind = "tags"
			}
			w.tags = map[string]string{}
			for _, tg := range body.Tags {
				w.tags[tg.Key] = tg.Value
			}
		case "runs/set-tag":
			w.kind, w.tags = "tags", map[string]string{body.Key: body.Value}
		case "runs/delete-tag":
			w.kind, w.delTag = "delete-tag", body.Key
		case "runs/update":
			w.kind, w.status = "update", body.Status
			if body.EndTime != nil {
				w.endTime = *body.EndTime
			}
		case "runs/log-metric":
			w.kind, w.metricsN = "points", 1
		}
		out = append(out, w)
	}
	return out
}

func (w runWrite) String() string {
	s := fmt.Sprintf("#%d-%d %s %s", w.start, w.end, w.kind, w.path)
	if v, ok := w.tags[mlflowconv.TagComplete]; ok {
		s += fmt.Sprintf(" complete=%q", v)
	}
	if w.delTag != "" {
		s += " key=" + w.delTag
	}
	if w.kind == "update" {
		s += fmt.Sprintf(" status=%s end=%d", w.status, w.endTime)
	}
	return s
}

// TestAppendFinalUpdatesComeLast records, through a proxy in front of a
// real MLflow server, every request the sink sends while it appends to a
// copied run that grew (new points, a new and a changed file, a file gone)
// and ended at the source, and asserts their order (issue 12: "status, end
// time and runferry.complete updated last; runferry.complete set only when
// the source run has ended"):
//   - the append first takes the complete tag off (delete-tag), before it
//     writes any point or file (but its keeping of the copy as it was,
//     under runferry/append-base/);
//   - every new point and every file is written (its answer received)
//     before status and end time are set (one runs/update, with the source
//     run's FINISHED and end time);
//   - the complete tag is set once, "true", by the last write to the run,
//     sent after the status and end time were answered;
//   - while the source run was running (the first copy), complete was set
//     once, to "running", never to "true", and the status stayed RUNNING
//     without an end time.
func TestAppendFinalUpdatesComeLast(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	proxy := newRecordingProxy(t, srv.URL)
	early, grown := withSystemMetrics()
	big := grown.Runs[0].Run.Origin.String()
	wantEnd := grown.Runs[0].Run.End.UnixMilli()
	if grown.Runs[0].Run.Status == schema.StatusRunning || grown.Runs[0].Run.End.IsZero() || early.Runs[0].Run.Status != schema.StatusRunning {
		t.Fatalf("fixture: want a run that is RUNNING, then ended; got %s then %s (end %v)", early.Runs[0].Run.Status, grown.Runs[0].Run.Status, grown.Runs[0].Run.End)
	}
	dst, _, _ := pair(t, proxy.srv.URL)
	opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return time.Millisecond }}
	destOf := func(rep *transfer.Report) string {
		t.Helper()
		for _, r := range rep.Runs {
			if r.Origin == big {
				return r.DestID
			}
		}
		t.Fatalf("no result for run %s", big)
		return ""
	}

	first, err := transfer.Copy(ctx, memsrc.New(early), dst, opt)
	if err != nil || first.Totals.Failed != 0 {
		t.Fatalf("first copy: %v %+v", err, first.Totals)
	}
	id := destOf(first)
	firstWrites := writesTo(t, proxy.take(), id)
	var completes []string
	for _, w := range firstWrites {
		if v, ok := w.tags[mlflowconv.TagComplete]; ok {
			completes = append(completes, v)
		}
		if w.kind == "update" && (w.status != string(schema.StatusRunning) || w.endTime != 0) {
			t.Errorf("first copy of a running run: %s; want status RUNNING and no end time", w)
		}
	}
	if len(completes) != 1 || completes[0] != mlflowconv.CompleteRunning {
		t.Fatalf("first copy of a running run set %s to %q; want once, %q", mlflowconv.TagComplete, completes, mlflowconv.CompleteRunning)
	}

	second, err := transfer.Copy(ctx, memsrc.New(grown), dst, opt)
	if err != nil || second.Totals.Failed != 0 {
		t.Fatalf("second copy: %v %+v", err, second.Totals)
	}
	if got := destOf(second); got != id {
		t.Fatalf("the grown run was written to %s, want it appended to %s", got, id)
	}
	for _, r := range second.Runs {
		if r.Origin == big && (!r.Appended || r.Points == 0 || r.Files == 0) {
			t.Fatalf("run %s: appended %v, %d points, %d files (%s); want new points and files appended", big, r.Appended, r.Points, r.Files, r.Reason)
		}
	}
	writes := writesTo(t, proxy.take(), id)
	var log []string
	for _, w := range writes {
		log = append(log, w.String())
		if w.code >= 300 {
			t.Errorf("%s answered %d", w, w.code)
		}
	}
	t.Logf("writes to run %s during the append:\n%s", id, strings.Join(log, "\n"))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nwrites to the run, in order:\n%s", append(args, strings.Join(log, "\n"))...)
	}

	// Find the take-off of the complete tag, the status update and the
	// complete tag's setting.
	var takeOff, update, done *runWrite
	var points, files int
	for i := range writes {
		w := &writes[i]
		switch {
		case w.kind == "delete-tag" && w.delTag == mlflowconv.TagComplete:
			if takeOff == nil {
				takeOff = w
			}
		case w.kind == "update":
			if update != nil {
				fail("status and end time set twice (%s, %s)", update, w)
			}
			update = w
		case w.kind == "points":
			points += w.metricsN
		case w.kind == "file" || w.kind == "delete-file":
			files++
		}
		if v, ok := w.tags[mlflowconv.TagComplete]; ok {
			if done != nil {
				fail("%s set twice (%s, %s)", mlflowconv.TagComplete, done, w)
			}
			if v != mlflowconv.CompleteEnded {
				fail("%s set to %q; want %q, the source run has ended", mlflowconv.TagComplete, v, mlflowconv.CompleteEnded)
			}
			done = w
		}
	}
	switch {
	case takeOff == nil:
		fail("the append never took %s off the run", mlflowconv.TagComplete)
	case update == nil:
		fail("the append never set the status and end time")
	case done == nil:
		fail("the append never set %s", mlflowconv.TagComplete)
	case points == 0 || files == 0:
		fail("the append wrote %d points and %d files; want both", points, files)
	}
	if update.status != string(schema.StatusFinished) || update.endTime != wantEnd {
		fail("status and end time set to %s %d; want %s %d", update.status, update.endTime, schema.StatusFinished, wantEnd)
	}
	for _, w := range writes {
		switch {
		case w.recorded == takeOff.recorded || w.recorded == update.recorded || w.recorded == done.recorded:
		case (w.kind == "points" || w.kind == "file" && !strings.Contains(w.path, "/artifacts/"+mlflowconv.AppendBaseDir) || w.kind == "delete-file") && w.start < takeOff.end:
			// Only the copy of the run as it was (runferry/append-base/,
			// kept to continue an append cut short) may come before.
			fail("%s was sent before %s was taken off (%s)", w, mlflowconv.TagComplete, takeOff)
		case (w.kind == "points" || w.kind == "file" || w.kind == "delete-file") && w.end > update.start:
			fail("%s was not done before the status and end time were set (%s)", w, update)
		case w.end > done.start:
			fail("%s was not done before %s was set (%s): it must be the last write", w, mlflowconv.TagComplete, done)
		}
	}
	if update.end > done.start {
		fail("%s was set (%s) before the status and end time were answered (%s)", mlflowconv.TagComplete, done, update)
	}
}
