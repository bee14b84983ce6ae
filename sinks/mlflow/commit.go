package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// Commit finishes the run, in an order that leaves it recognisably
// incomplete until the last step: appending, it deletes the files the
// source no longer has (deleteGone); it writes the held points and the
// summary points (see view), uploads the spooled console output in
// segments (runferry/logs.jsonl, runferry/logs.1.jsonl, ..., plus the same
// lines as plain text in output.log, output.1.log, ... unless the source had
// a file output.log; appending, only the segments that changed: see
// commitLogs), the rich values (runferry/rich_values.jsonl) and
// their images and tables in MLflow's layouts (writeMedia), a
// config.json unless the source had one; completes the re-created logged
// models (finishModels); continuing a first copy cut short, deletes the
// files it held that the source no longer has (deleteGoneContinued);
// uploads runferry/coverage.json; sets
// the original status and end time (runs/update); points child runs
// written earlier at this run; writes the fingerprint, the mark
// (sinks.Marked) and then the complete tag (mlflowconv.TagFingerprint,
// TagMark, TagComplete; one log-batch), whose value is "true" only once
// the source run has ended ("running" while it runs, see
// mlflowconv.CompleteEnded); and finally
// deletes the run if the source run was deleted (MLflow refuses writes to
// deleted runs, so this comes last, and the complete tag says "deleted" so
// that a crash just before it is seen as incomplete).
func (w *writer) Commit(ctx context.Context) error {
	if err := w.check(); err != nil {
		return err
	}
	api, uri := w.api(), w.run.ArtifactURI
	if w.fp == "" {
		// The source vouches for nothing (a part of the run could not
		// be read): the append is written, whatever it holds.
		if err := w.begin(ctx); err != nil {
			return err
		}
	}
	if err := w.deleteGone(ctx); err != nil {
		return err
	}
	if err := w.deleteStaleOutputSegments(ctx); err != nil {
		return err
	}
	if err := w.writeHeld(ctx); err != nil {
		return err
	}
	if err := w.writeSummary(ctx); err != nil {
		return err
	}
	for _, k := range w.keys {
		k.flush(w.cov)
	}
	w.keys = map[string]*keyState{}
	if err := w.commitFold(ctx); err != nil {
		return err
	}
	if err := w.resumedLeftOver(); err != nil {
		if w.continued {
			return w.retireContinued(ctx, err)
		}
		return err
	}
	if w.logs != nil {
		if err := w.commitLogs(ctx); err != nil {
			return err
		}
	}
	if w.rich != nil {
		same := false
		if w.pending() {
			var err error
			if same, err = w.richHeld(ctx); err != nil {
				return err
			}
		}
		if !same {
			if err := w.uploadSpool(ctx, w.rich, mlflowconv.RichValuesPath); err != nil {
				return err
			}
		}
	}
	// Appending with nothing written yet, the rich values and the files
	// are the copy's, and so are the images and tables made from them.
	if err := w.writeMedia(ctx, !w.pending()); err != nil {
		return err
	}
	if len(w.src.Config) > 0 && !w.written["config.json"] && string(w.src.Config) != "null" {
		// Appending with nothing written yet, run.json, which holds the
		// config, is the copy's: a config.json it generated is the same.
		if !w.pending() || !slices.Contains(w.app.generated, "config.json") {
			if err := api.UploadBytes(ctx, uri, "config.json", w.src.Config); err != nil {
				return fmt.Errorf("uploading config.json: %w", err)
			}
		}
		w.cov.Generated = append(w.cov.Generated, "config.json")
	}
	if err := w.finishModels(ctx); err != nil {
		return err
	}
	if err := w.deleteGoneContinued(ctx); err != nil {
		return err
	}
	cov, err := json.MarshalIndent(w.cov, "", " ")
	if err != nil {
		return err
	}
	upd := mlflowapi.UpdateRun{RunID: w.run.RunID, Status: string(w.src.Status)}
	if w.app != nil {
		upd.RunName = appendName(w.src)
	}
	if !w.src.End.IsZero() {
		end := w.src.End.UnixMilli()
		upd.EndTime = &end
	}
	complete := mlflowconv.CompleteEnded
	switch {
	case w.src.Deleted:
		complete = mlflowconv.CompleteDeleted
	case w.src.Status == schema.StatusRunning:
		complete = mlflowconv.CompleteRunning
	}
	if w.commitUnchanged(cov, upd, complete) {
		// Child runs written before this one are still pointed at it.
		if err := w.sink.linkChildren(ctx, w.run.RunID, w.src.Origin.String()); err != nil {
			return err
		}
		w.unchanged = true
		return w.finish(ctx)
	}
	if err := api.UploadBytes(ctx, uri, mlflowconv.CoveragePath, cov); err != nil {
		return fmt.Errorf("uploading %s: %w", mlflowconv.CoveragePath, err)
	}
	if err := api.UpdateRun(ctx, upd); err != nil {
		return fmt.Errorf("setting status and end time: %w", err)
	}
	if err := w.sink.linkChildren(ctx, w.run.RunID, w.src.Origin.String()); err != nil {
		return err
	}
	// The fingerprint and the complete tag go in one log-batch of tags
	// only (one transaction, idempotent, retried): one round trip fewer per
	// run than two set-tag calls, and complete still never precedes the
	// fingerprint.
	var final []mlflowapi.Tag
	if w.fp != "" {
		final = append(final, mlflowapi.Tag{Key: mlflowconv.TagFingerprint, Value: w.fp})
	}
	if w.mark != "" {
		final = append(final, mlflowapi.Tag{Key: mlflowconv.TagMark, Value: w.mark})
	}
	final = append(final, mlflowapi.Tag{Key: mlflowconv.TagComplete, Value: complete})
	if err := api.LogBatch(ctx, mlflowapi.LogBatch{RunID: w.run.RunID, Tags: final}); err != nil {
		return fmt.Errorf("writing the fingerprint and marking the run complete: %w", err)
	}
	if w.src.Deleted {
		if err := api.DeleteRun(ctx, w.run.RunID); err != nil {
			return fmt.Errorf("deleting the run (deleted in the source): %w", err)
		}
	}
	return w.finish(ctx)
}

// finish ends a committed writer: its spools removed, its experiment
// released.
func (w *writer) finish(ctx context.Context) error {
	w.done = true
	w.logs.remove()
	w.rich.remove()
	w.view.held.remove()
	w.removeFold()
	w.removeModelSpools()
	if err := w.release(ctx); err != nil {
		return fmt.Errorf("run committed, but its experiment (deleted in the source) could not be deleted: %w", err)
	}
	return nil
}

func (w *writer) uploadSpool(ctx context.Context, s *spool, rel string) error {
	if err := s.b.Flush(); err != nil {
		return fmt.Errorf("spooling %s: %w", rel, err)
	}
	if err := w.api().UploadFile(ctx, w.run.ArtifactURI, rel, s.f.Name()); err != nil {
		return fmt.Errorf("uploading %s: %w", rel, err)
	}
	return nil
}

// resumedLeftOver, continuing an append cut short, refuses the append when
// the server holds points the cut-short append wrote that this one did
// not write again (the source changed beyond the copy's cursors in
// between): MLflow cannot remove them, so the run is written whole.
func (w *writer) resumedLeftOver() error {
	for _, k := range slices.Sorted(maps.Keys(w.resumed)) {
		n := 0
		for _, c := range w.resumed[k] {
			n += c
		}
		if n > 0 && w.continued {
			return fmt.Errorf("metric %q: the copy cut short holds %d points the source no longer has", k, n)
		}
		if n > 0 {
			return sinks.CannotAppend(fmt.Sprintf("metric %q: the append cut short wrote %d points the source no longer has", k, n))
		}
	}
	return nil
}

// appendName is the run name an append sets with its runs/update (a run
// renamed at the source keeps its MLflow run id): the source's name, cut
// to MLflow's length as a first copy cuts it, or "" (left as it is) when
// the run is nameless or carries an mlflow.runName tag of another value,
// which the server would refuse beside it.
func appendName(r schema.Run) string {
	name, _ := mlflowconv.Truncate(r.Name, mlflowapi.MaxRunNameLength)
	for _, t := range r.Tags {
		if t.Key == mlflowapi.TagRunName && t.Value != name {
			return ""
		}
	}
	return name
}
