// Package dataset holds experiment-tracking data wholly in memory: the
// backing store of the memory adapters, the canonical fixture of the
// conformance suites, and the comparison used by round-trip tests.
//
// It is meant for data that fits in memory; the product streams everything
// else.
package dataset

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// Dataset is a set of experiments and their runs.
type Dataset struct {
	Experiments []schema.Experiment
	Runs        []*RunData
}

// RunData is one run with everything streamed for it.
type RunData struct {
	Run        schema.Run
	Metrics    []schema.Metric
	RichValues []schema.RichValue
	Logs       []schema.LogLine
	Files      []File // sorted by path
}

// File is one artifact with its content (nil Content and a Problem for a
// file the source could not read).
type File struct {
	Path    string
	Content []byte
	Problem string
}

// Artifact describes f as a schema.Artifact whose Open returns the content.
func (f File) Artifact() schema.Artifact {
	a := schema.Artifact{Path: f.Path, Size: -1, Problem: f.Problem}
	if f.Problem != "" {
		return a
	}
	sum := sha256.Sum256(f.Content)
	a.Size = int64(len(f.Content))
	a.Digest = "sha256:" + hex.EncodeToString(sum[:])
	content := f.Content
	a.Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	}
	return a
}

// Run returns the run with origin ref, or nil.
func (d *Dataset) Run(ref schema.Ref) *RunData {
	for _, r := range d.Runs {
		if r.Run.Origin == ref {
			return r
		}
	}
	return nil
}

// Read reads everything src holds into a Dataset, following the source's
// optional abilities. Runs are kept in the source's order.
func Read(ctx context.Context, src sources.Source) (*Dataset, error) {
	d := &Dataset{}
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			return nil, err
		}
		d.Experiments = append(d.Experiments, e)
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				return nil, err
			}
			rd, err := ReadRun(ctx, src, r)
			if err != nil {
				return nil, err
			}
			d.Runs = append(d.Runs, rd)
		}
	}
	return d, nil
}

// ReadRun reads one run's streams from src.
func ReadRun(ctx context.Context, src sources.Source, r schema.Run) (*RunData, error) {
	rd := &RunData{Run: r}
	for page, err := range src.Metrics(ctx, r.Origin) {
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", r.Origin, err)
		}
		rd.Metrics = append(rd.Metrics, page...)
	}
	if rv, ok := src.(sources.RichValueReader); ok {
		for page, err := range rv.RichValues(ctx, r.Origin) {
			if err != nil {
				return nil, fmt.Errorf("rich values of %s: %w", r.Origin, err)
			}
			rd.RichValues = append(rd.RichValues, page...)
		}
	}
	if lr, ok := src.(sources.LogReader); ok {
		for page, err := range lr.Logs(ctx, r.Origin) {
			if err != nil {
				return nil, fmt.Errorf("logs of %s: %w", r.Origin, err)
			}
			rd.Logs = append(rd.Logs, page...)
		}
	}
	if al, ok := src.(sources.ArtifactLister); ok {
		for a, err := range al.Artifacts(ctx, r.Origin) {
			if err != nil {
				return nil, fmt.Errorf("artifacts of %s: %w", r.Origin, err)
			}
			f := File{Path: a.Path, Problem: a.Problem}
			if a.Open != nil {
				rc, err := a.Open(ctx)
				if err != nil {
					return nil, fmt.Errorf("artifact %s of %s: %w", a.Path, r.Origin, err)
				}
				f.Content, err = io.ReadAll(rc)
				rc.Close()
				if err != nil {
					return nil, fmt.Errorf("artifact %s of %s: %w", a.Path, r.Origin, err)
				}
			}
			rd.Files = append(rd.Files, f)
		}
	}
	return rd, nil
}

// Clone returns a deep copy of d.
func (d *Dataset) Clone() *Dataset {
	c := &Dataset{}
	for _, e := range d.Experiments {
		e.Tags = slices.Clone(e.Tags)
		c.Experiments = append(c.Experiments, e)
	}
	for _, r := range d.Runs {
		run := r.Run
		run.Params = slices.Clone(run.Params)
		run.Tags = slices.Clone(run.Tags)
		run.Labels = slices.Clone(run.Labels)
		run.Damage = slices.Clone(run.Damage)
		run.Config = bytes.Clone(run.Config)
		run.Summary = bytes.Clone(run.Summary)
		files := make([]File, len(r.Files))
		for i, f := range r.Files {
			files[i] = File{Path: f.Path, Content: bytes.Clone(f.Content), Problem: f.Problem}
		}
		rv := slices.Clone(r.RichValues)
		for i := range rv {
			rv[i].Files = slices.Clone(rv[i].Files)
		}
		c.Runs = append(c.Runs, &RunData{Run: run, Metrics: slices.Clone(r.Metrics),
			RichValues: rv, Logs: slices.Clone(r.Logs), Files: files})
	}
	return c
}

// Describe returns a one-line count of d's contents, for test logs.
func (d *Dataset) Describe() string {
	var points, files int
	for _, r := range d.Runs {
		points += len(r.Metrics)
		files += len(r.Files)
	}
	return fmt.Sprintf("%d experiments, %d runs, %d points, %d files", len(d.Experiments), len(d.Runs), points, files)
}

// SortedRuns returns the runs ordered by origin.
func (d *Dataset) SortedRuns() []*RunData {
	out := slices.Clone(d.Runs)
	slices.SortFunc(out, func(a, b *RunData) int { return strings.Compare(a.Run.Origin.String(), b.Run.Origin.String()) })
	return out
}
