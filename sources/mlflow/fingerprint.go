package mlflow

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.Fingerprinter = (*Source)(nil)

// fingerprintVersion names the recipe of Fingerprint; a new recipe makes
// every run look changed once, which is safe.
const fingerprintVersion = "mlflow1:"

// headerDigest digests what runs/search returned for a run, canonically:
// its info (status, end time, name, lifecycle stage, ...), every tag and
// param, latest_metrics (key, value, step and timestamp of each key's
// latest point) and the dataset inputs. Slices are sorted first, so the
// server's order does not matter.
func headerDigest(r mlflowapi.Run) string {
	c := r
	c.Data.Tags = slices.Clone(r.Data.Tags)
	slices.SortFunc(c.Data.Tags, func(a, b mlflowapi.Tag) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
	c.Data.Params = slices.Clone(r.Data.Params)
	slices.SortFunc(c.Data.Params, func(a, b mlflowapi.Param) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
	c.Data.Metrics = slices.Clone(r.Data.Metrics)
	slices.SortFunc(c.Data.Metrics, func(a, b mlflowapi.Metric) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.Step, b.Step), cmp.Compare(a.Timestamp, b.Timestamp), cmp.Compare(float64(a.Value), float64(b.Value)))
	})
	c.Inputs.DatasetInputs = slices.Clone(r.Inputs.DatasetInputs)
	for i := range c.Inputs.DatasetInputs {
		in := &c.Inputs.DatasetInputs[i]
		in.Tags = slices.Clone(in.Tags)
		slices.SortFunc(in.Tags, func(a, b mlflowapi.Tag) int {
			return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
		})
	}
	slices.SortFunc(c.Inputs.DatasetInputs, func(a, b mlflowapi.DatasetInput) int {
		return cmp.Or(strings.Compare(a.Dataset.Name, b.Dataset.Name), strings.Compare(a.Dataset.Digest, b.Dataset.Digest))
	})
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: plain strings and numbers
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Fingerprint tells whether a run changed since it was last transferred,
// without reading its metric histories or file bodies: a digest of what
// runs/search already returned for it (status, end time, name, lifecycle
// stage, tags, params, latest_metrics with each key's latest value, step
// and timestamp, dataset inputs) and of the run's artifact listing (every
// file's path and size; one listing request per artifact directory, see
// artifactFiles). Running runs are fingerprinted too: the fingerprint is
// taken before the run is read, so a point logged during the copy changes
// it for the next job.
//
// The listing cannot be skipped: MLflow records nothing on the run when a
// file is logged to it (no time, no counter in runs/search), so only the
// listing sees a new file on a FINISHED run.
//
// What it cannot see: a point logged at a step and time below its key's
// latest point (latest_metrics does not move), a file rewritten with the
// same size, and a change to an MLflow 3 logged model's files. `--force`
// compares such runs in full.
func (s *Source) Fingerprint(ctx context.Context, run schema.Run) (string, error) {
	s.mu.Lock()
	info := s.runs[run.Origin]
	s.mu.Unlock()
	if info == nil || info.header == "" {
		return "", nil // not listed by Runs: cannot tell, so it is copied
	}
	files, err := s.artifactFiles(ctx, info)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if k := fault.KindOf(err); k == fault.KindFatal || k == fault.KindCanceled {
			return "", err
		}
		return "", fault.Permanent(fmt.Errorf("mlflow run %s: listing artifacts: %w", info.id, err))
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", info.header)
	for _, f := range files {
		size := int64(-1)
		if f.FileSize != nil {
			size = *f.FileSize
		}
		fmt.Fprintf(h, "%q %d\n", f.Path, size)
	}
	return fingerprintVersion + hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// ListWindow is how many artifact directories the source lists at once,
// across all the runs being fingerprinted (the plan fingerprints several
// runs at once, engine/transfer): a run's subdirectories are listed
// concurrently, so a run costs one round trip per level of its artifact
// tree, not one per directory.
const ListWindow = 8

// dirLister lists one artifact directory of a run without recursing
// (mlflowapi.Client.ListArtifactDir). Backends without it (the local
// stores) are walked through ListArtifacts.
type dirLister interface {
	ListArtifactDir(ctx context.Context, runID, artifactURI, dir string) ([]mlflowapi.FileInfo, error)
}

// artifactFiles returns every file of a run's artifacts in the order
// Backend.ListArtifacts walks them (sorted by path within each directory,
// a directory's files where the directory sorts). Through a dirLister the
// directories are listed concurrently, at most ListWindow requests of the
// source in flight; the result is the same. The first error cancels the
// listings still to come and is returned.
func (s *Source) artifactFiles(ctx context.Context, info *runInfo) ([]mlflowapi.FileInfo, error) {
	dl, ok := s.api.(dirLister)
	if !ok {
		var files []mlflowapi.FileInfo
		for f, err := range s.api.ListArtifacts(ctx, info.id, "") {
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
		return files, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &treeWalk{s: s, dl: dl, info: info, cancel: cancel}
	files := w.dir(ctx, "")
	if w.err != nil {
		return nil, w.err
	}
	return files, nil
}

// treeWalk is one run's artifact listing through a dirLister.
type treeWalk struct {
	s      *Source
	dl     dirLister
	info   *runInfo
	cancel func()

	mu  sync.Mutex
	err error // the first error
}

func (w *treeWalk) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cancel()
}

// dir lists dir and, concurrently, each of its subdirectories, and returns
// their files in walk order (incomplete once w.err is set).
func (w *treeWalk) dir(ctx context.Context, dir string) []mlflowapi.FileInfo {
	select {
	case w.s.listing <- struct{}{}:
	case <-ctx.Done():
		w.fail(ctx.Err())
		return nil
	}
	entries, err := w.dl.ListArtifactDir(ctx, w.info.id, w.info.artifactURI, dir)
	<-w.s.listing
	if err != nil {
		w.fail(err)
		return nil
	}
	subs := make([][]mlflowapi.FileInfo, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		if e.IsDir {
			wg.Go(func() { subs[i] = w.dir(ctx, e.Path) })
		}
	}
	wg.Wait()
	var files []mlflowapi.FileInfo
	for i, e := range entries {
		if e.IsDir {
			files = append(files, subs[i]...)
		} else {
			files = append(files, e)
		}
	}
	return files
}

var _ sources.ChangeTimer = (*Source)(nil)

// ChangedAt is the latest of what runs/search told of the run's times:
// its start, its end and each metric key's latest timestamp
// (latest_metrics), by the clocks of the clients that logged them. ok is
// false for a run not listed by Runs.
func (s *Source) ChangedAt(_ context.Context, run schema.Run) (time.Time, bool) {
	s.mu.Lock()
	info := s.runs[run.Origin]
	s.mu.Unlock()
	if info == nil || info.changed <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(info.changed).UTC(), true
}
