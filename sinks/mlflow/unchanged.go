package mlflow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.UnchangedReporter = (*writer)(nil)

// appendStart is what an append writes to the copy before any change to
// it (startAppend): the copy's run.json and coverage.json kept under
// mlflowconv.AppendBaseDir, the appending tag (and, for a copy held under
// a former origin, the new origin), the complete tag removed, then the new
// run.json, the params added and every tag, and the tags gone removed.
// AppendRun writes it at once, unless the run as given equals the copy's
// in all of that (quiet): then the writer writes it before its first
// write to the server (writer.begin), and an append that has nothing to
// write by Commit writes nothing at all (see writer.commitUnchanged).
type appendStart struct {
	info                mlflowapi.RunInfo
	prevRaw, prevCovRaw []byte // the copy's run.json and coverage.json
	mark                string // the mark appended from (sinks.AppendBase.Mark)
	former, origin      string
	resuming            bool // continuing an append cut short
	sidecar             []byte
	batches             []mlflowapi.LogBatch // params added and every tag
	goneTags            []string
	heldTags            map[string]string // the copy's tags, by key
	begun               bool              // written
}

// quiet reports whether writing the start of the append can wait for the
// append's first write: not continuing an append cut short nor taking a
// new origin, the run not RUNNING (written again on every sync, as a
// first copy is), its run.json byte for byte the copy's, no param added,
// no tag gone, and every tag held with the value the run gives it.
func (st *appendStart) quiet(r schema.Run, tags []mlflowapi.Tag, newParams int) bool {
	if st.resuming || st.former != "" || r.Status == schema.StatusRunning || newParams != 0 || len(st.goneTags) != 0 ||
		!bytes.Equal(st.sidecar, st.prevRaw) {
		return false
	}
	for _, t := range tags {
		if v, ok := st.heldTags[t.Key]; !ok || v != t.Value {
			return false
		}
	}
	return true
}

// startAppend writes st (see appendStart) in an order that keeps the copy
// recognisable at every step: its run.json and coverage.json are kept
// first, then the appending tag is set, then the complete tag removed. A
// kill before the complete tag goes leaves a complete copy; after, an
// append the next AppendRun with the same mark continues. Continuing an
// append cut short, those steps are done already.
func (s *Sink) startAppend(ctx context.Context, st *appendStart) error {
	info := st.info
	if !st.resuming {
		for _, f := range []struct {
			rel string
			b   []byte
		}{{mlflowconv.AppendBaseDir + "run.json", st.prevRaw}, {mlflowconv.AppendBaseDir + "coverage.json", st.prevCovRaw}} {
			if err := s.api.UploadBytes(ctx, info.ArtifactURI, f.rel, f.b); err != nil {
				return fmt.Errorf("keeping %s of run %s: %w", f.rel, info.RunID, err)
			}
		}
		mark := []mlflowapi.Tag{{Key: mlflowconv.TagAppending, Value: st.mark}}
		if st.former != "" {
			// From here on the copy is found under the new origin (an
			// append cut short is continued under it).
			mark = append(mark, mlflowapi.Tag{Key: mlflowconv.TagOrigin, Value: st.origin},
				mlflowapi.Tag{Key: mlflowconv.TagOriginKey, Value: mlflowconv.OriginKey(st.origin)})
		}
		if err := s.api.LogBatch(ctx, mlflowapi.LogBatch{RunID: info.RunID, Tags: mark}); err != nil {
			return fmt.Errorf("marking run %s as appended to: %w", info.RunID, err)
		}
		if err := s.api.DeleteTag(ctx, info.RunID, mlflowconv.TagComplete); err != nil {
			return fmt.Errorf("marking run %s incomplete: %w", info.RunID, err)
		}
	}
	if err := s.api.UploadBytes(ctx, info.ArtifactURI, mlflowconv.SidecarPath, st.sidecar); err != nil {
		return fmt.Errorf("uploading %s: %w", mlflowconv.SidecarPath, err)
	}
	for _, b := range st.batches {
		if err := s.api.LogBatch(ctx, b); err != nil {
			return fmt.Errorf("writing params and tags: %w", err)
		}
	}
	for _, k := range st.goneTags {
		if err := s.api.DeleteTag(ctx, info.RunID, k); err != nil {
			return fmt.Errorf("removing tag %q (gone from the source): %w", k, err)
		}
	}
	return nil
}

// pending reports whether the writer appends and has written nothing to
// the server yet (the start of the append waits: appendStart).
func (w *writer) pending() bool { return w.start != nil && !w.start.begun }

// begin writes the start of the append (startAppend) unless it is
// written; every write of the writer to the server comes after it (runAPI).
func (w *writer) begin(ctx context.Context) error {
	if !w.pending() {
		return nil
	}
	if err := w.sink.startAppend(ctx, w.start); err != nil {
		return err
	}
	w.start.begun = true
	return nil
}

// Unchanged implements sinks.UnchangedReporter: after Commit, whether the
// append held nothing the copy does not, so that nothing was written.
func (w *writer) Unchanged() bool { return w.unchanged }

// commitUnchanged is Commit's last decision for an append that has
// written nothing yet (pending): cov, the coverage file it would write,
// equals the copy's byte for byte, and so do the status, end time and
// name upd would set, the mark and the complete tag. The fingerprint
// is not compared: a source moved gives new ones to the same runs, and the
// copy keeps its own (the ledger records the new one). Then the append
// writes nothing and reports the run unchanged. A run given without a
// fingerprint (the source vouches for nothing) was written already, at
// the start of Commit.
func (w *writer) commitUnchanged(cov []byte, upd mlflowapi.UpdateRun, complete string) bool {
	if !w.pending() || w.fp == "" || !bytes.Equal(cov, w.start.prevCovRaw) {
		return false
	}
	info := w.start.info
	if upd.Status != info.Status || upd.RunName != "" && upd.RunName != info.RunName {
		return false
	}
	if (upd.EndTime == nil) != (info.EndTime == nil) || upd.EndTime != nil && *upd.EndTime != *info.EndTime {
		return false
	}
	mark, hasMark := w.start.heldTags[mlflowconv.TagMark]
	held, hasComplete := w.start.heldTags[mlflowconv.TagComplete]
	return hasMark && mark == w.mark && hasComplete && held == complete
}

// richHeld reports whether the spooled rich values are byte for byte the
// copy's mlflowconv.RichValuesPath (compared by SHA-256, streamed).
func (w *writer) richHeld(ctx context.Context) (bool, error) {
	if err := w.rich.b.Flush(); err != nil {
		return false, fmt.Errorf("spooling %s: %w", mlflowconv.RichValuesPath, err)
	}
	f, err := os.Open(w.rich.f.Name())
	if err != nil {
		return false, fmt.Errorf("spooling %s: %w", mlflowconv.RichValuesPath, err)
	}
	defer f.Close()
	mine := sha256.New()
	if _, err := io.Copy(mine, f); err != nil {
		return false, fmt.Errorf("spooling %s: %w", mlflowconv.RichValuesPath, err)
	}
	body, err := w.sink.api.OpenArtifact(ctx, w.run.RunID, w.run.ArtifactURI, mlflowconv.RichValuesPath)
	if mlflowapi.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s of run %s: %w", mlflowconv.RichValuesPath, w.run.RunID, err)
	}
	defer body.Close()
	theirs := sha256.New()
	if _, err := io.Copy(theirs, body); err != nil {
		return false, fmt.Errorf("reading %s of run %s: %w", mlflowconv.RichValuesPath, w.run.RunID, err)
	}
	return bytes.Equal(mine.Sum(nil), theirs.Sum(nil)), nil
}

// runAPI is the writer's way to the server: every call that changes
// anything first writes the start of an append (writer.begin), so that
// an append that changes nothing writes nothing, and one that changes
// something is recognisable as an append from its first write on. Calls
// that only read pass through.
type runAPI struct{ w *writer }

func (w *writer) api() runAPI { return runAPI{w} }

func (a runAPI) client(ctx context.Context) (*mlflowapi.Client, error) {
	if err := a.w.begin(ctx); err != nil {
		return nil, err
	}
	return a.w.sink.api, nil
}

func (a runAPI) OpenArtifact(ctx context.Context, runID, artifactURI, rel string) (io.ReadCloser, error) {
	return a.w.sink.api.OpenArtifact(ctx, runID, artifactURI, rel)
}

func (a runAPI) ListArtifactDir(ctx context.Context, runID, artifactURI, dir string) ([]mlflowapi.FileInfo, error) {
	return a.w.sink.api.ListArtifactDir(ctx, runID, artifactURI, dir)
}

func (a runAPI) GetRun(ctx context.Context, runID string) (mlflowapi.Run, error) {
	return a.w.sink.api.GetRun(ctx, runID)
}

func (a runAPI) SearchLoggedModels(ctx context.Context, expID, filter string) ([]mlflowapi.LoggedModel, error) {
	return a.w.sink.api.SearchLoggedModels(ctx, expID, filter)
}

func (a runAPI) UploadBytes(ctx context.Context, artifactURI, rel string, b []byte) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.UploadBytes(ctx, artifactURI, rel, b)
}

func (a runAPI) UploadFile(ctx context.Context, artifactURI, rel, path string) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.UploadFile(ctx, artifactURI, rel, path)
}

func (a runAPI) UploadArtifact(ctx context.Context, artifactURI, rel string, body io.Reader, size int64) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.UploadArtifact(ctx, artifactURI, rel, body, size)
}

func (a runAPI) UploadReplayable(ctx context.Context, artifactURI, rel string, open func() (io.Reader, error), size int64) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.UploadReplayable(ctx, artifactURI, rel, open, size)
}

func (a runAPI) DeleteArtifact(ctx context.Context, artifactURI, rel string) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.DeleteArtifact(ctx, artifactURI, rel)
}

func (a runAPI) LogBatch(ctx context.Context, b mlflowapi.LogBatch) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.LogBatch(ctx, b)
}

func (a runAPI) UpdateRun(ctx context.Context, u mlflowapi.UpdateRun) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.UpdateRun(ctx, u)
}

func (a runAPI) DeleteRun(ctx context.Context, runID string) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.DeleteRun(ctx, runID)
}

func (a runAPI) CreateLoggedModel(ctx context.Context, m mlflowapi.CreateLoggedModel) (mlflowapi.LoggedModel, error) {
	c, err := a.client(ctx)
	if err != nil {
		return mlflowapi.LoggedModel{}, err
	}
	return c.CreateLoggedModel(ctx, m)
}

func (a runAPI) FinalizeLoggedModel(ctx context.Context, id, status string) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.FinalizeLoggedModel(ctx, id, status)
}

func (a runAPI) DeleteLoggedModel(ctx context.Context, id string) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.DeleteLoggedModel(ctx, id)
}

func (a runAPI) LogModelMetrics(ctx context.Context, runID, modelID string, ms []mlflowapi.ModelMetric) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.LogModelMetrics(ctx, runID, modelID, ms)
}

func (a runAPI) LogModelOutput(ctx context.Context, runID, modelID string, step int64) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	return c.LogModelOutput(ctx, runID, modelID, step)
}
