package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// TestDryRunWandbCloudCountsFiles: a dry run from the W&B cloud counts the
// files of each run from its listing page (run files, and for each logged
// artifact version its manifest.json and the files the server says it
// stores, and the list of used versions): each run's planned files equal
// the files the copy then writes plus the files it names as not copied,
// and the closing lines agree. A server that refuses the listing in export
// form tells no files: the dry run says they were not estimated, never "0
// files".
func TestDryRunWandbCloudCountsFiles(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv := wandbtest.New(fixtureData(t), key)
	t.Cleanup(srv.Close)
	loc := "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity"
	dir := t.TempDir()
	archive := "parquet:" + filepath.Join(dir, "archive")
	state := filepath.Join(dir, "l.db")

	code, dryOut, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--dry-run", "--report", filepath.Join(dir, "plan.json"), "--state", state)
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, dryOut, errOut)
	}
	plan := readReport(t, filepath.Join(dir, "plan.json"))
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--report", filepath.Join(dir, "copy.json"), "--state", state)
	if code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	copied := readReport(t, filepath.Join(dir, "copy.json"))
	byOrigin := map[string]transfer.RunResult{}
	for _, r := range copied.Runs {
		byOrigin[r.Origin] = r
	}
	var want int64
	for _, p := range plan.Runs {
		c := byOrigin[p.Origin]
		n := c.Files + int64(len(c.FileProblem))
		want += n
		if !p.Estimated || false || p.Files != n {
			t.Errorf("%s: planned %d files (estimated %v, not estimated %v), the copy wrote %d and named %d not copied",
				p.Origin, p.Files, p.Estimated, false, c.Files, len(c.FileProblem))
		}
	}
	if len(plan.Runs) != 6 || plan.Totals.Files != want || copied.Totals.Files == 0 || copied.Totals.FilesNotCopied == 0 {
		t.Errorf("%d runs planned with %d files; copied %d files, %d not copied", len(plan.Runs), plan.Totals.Files, copied.Totals.Files, copied.Totals.FilesNotCopied)
	}
	if !strings.Contains(lastLine(dryOut), counted(want, "file")+", ") || strings.Contains(dryOut, "not estimated") {
		t.Errorf("dry run's closing line does not count %d files:\n%s", want, dryOut)
	}

	// A server that answers the listing in export form with an error.
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Body == nil {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		if bytes.Contains(b, []byte("RunsForExport")) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"errors":[{"message":"query too costly"}]}`))
			return true
		}
		return false
	})
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", loc, "parquet:"+filepath.Join(dir, "other"), "--dry-run", "--no-state", "--report", filepath.Join(dir, "plan2.json"))
	plan = readReport(t, filepath.Join(dir, "plan2.json"))
	if code != 0 || false || plan.Totals.Files != 0 ||
		!strings.Contains(lastLine(out), "would copy 6 runs (about ") || !strings.Contains(lastLine(out), "files and their bytes not estimated (the source's listing does not tell them)") ||
		strings.Count(out, "; files not estimated: the source's listing does not tell them)") != 6 || strings.Contains(out, " 0 files") {
		t.Errorf("dry run without the export form: exit %d, totals %+v\n%s\n%s", code, plan.Totals, out, errOut)
	}
	if b, err := matchReportSchema(t, filepath.Join(dir, "plan.json"), filepath.Join(dir, "plan2.json")); err != nil {
		t.Errorf("the dry runs' reports do not match docs/report.schema.json: %v\n%s", err, b)
	}
}
