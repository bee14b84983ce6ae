package tensorboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/tfevents"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// PageSize is the number of points, lines or values in one yielded page.
const PageSize = 10000

// Source reads a tree of TensorBoard event files. Runs are found on first
// use and kept until Close; their content is streamed from disk on every
// call.
type Source struct {
	cfg Config

	mu       sync.Mutex
	runs     []*runInfo
	problems []string
	omitted  map[schema.Ref]map[string]int64 // per run listed by Runs
	sizes    map[schema.Ref][2]int64         // points and image bytes, per run listed by Runs
	closed   bool
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.LogReader       = (*Source)(nil)
	_ sources.RichValueReader = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.Fingerprinter   = (*Source)(nil)
	_ sources.ProblemReporter = (*Source)(nil)
	_ sources.Omitter         = (*Source)(nil)
	_ sources.Sizer           = (*Source)(nil)
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("tensorboard source: closed")

// Open is the sources.Factory function for tensorboard: locations.
func Open(ctx context.Context, loc location.Location) (sources.Source, error) {
	cfg, err := ParseConfig(loc)
	if err != nil {
		return nil, fault.Fatal(err)
	}
	return New(cfg)
}

// New returns a source reading cfg.Root. A root that does not exist or is
// not a folder is a fatal error.
func New(cfg Config) (*Source, error) {
	abs, err := sources.LocalFolder("tensorboard", cfg.Root, "give the log folder")
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fault.Fatal(fmt.Errorf("tensorboard: %w", err))
	}
	cfg.Root = abs
	if cfg.Experiment == "" {
		cfg.Experiment = filepath.Base(abs)
	}
	return &Source{cfg: cfg, omitted: map[schema.Ref]map[string]int64{}, sizes: map[schema.Ref][2]int64{}}, nil
}

func (s *Source) index(ctx context.Context) ([]*runInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fault.Fatal(ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.runs == nil {
		runs, problems, err := discover(ctx, s.cfg.Root)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fault.Fatal(fmt.Errorf("tensorboard: %w", err))
		}
		if len(runs) == 0 {
			return nil, fault.Fatal(fmt.Errorf("tensorboard: no event files (events.out.tfevents.*) under %s", s.cfg.Root))
		}
		s.runs, s.problems = runs, problems
	}
	return s.runs, nil
}

func (s *Source) find(ctx context.Context, ref schema.Ref) (*runInfo, error) {
	runs, err := s.index(ctx)
	if err != nil {
		return nil, err
	}
	for _, ri := range runs {
		if ri.ref == ref {
			return ri, nil
		}
	}
	return nil, fault.Permanent(fmt.Errorf("tensorboard: run %s not found under %s", ref, s.cfg.Root))
}

// Check proves the root is readable and holds event files.
func (s *Source) Check(ctx context.Context) error {
	_, err := s.index(ctx)
	return err
}

// Problems names what the walk could not read (folders, files).
func (s *Source) Problems(ctx context.Context) []string {
	if _, err := s.index(ctx); err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

// Omitted counts, over the runs Runs listed, the summary values and event
// records that are not mapped (by kind), the metric points dropped because
// their step went below an earlier point of their key, and param values
// that differ from one given earlier under the same key.
func (s *Source) Omitted(ctx context.Context) map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for _, m := range s.omitted {
		for k, n := range m {
			out[k] += n
		}
	}
	return out
}

// Experiments yields the one experiment: the root.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		runs, err := s.index(ctx)
		if err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		e := schema.Experiment{Origin: runs[0].exp, Name: s.cfg.Experiment}
		for _, ri := range runs {
			for _, g := range ri.groups {
				for _, f := range g.files {
					if f.first > 0 {
						if t := time.UnixMilli(millis(f.first)).UTC(); e.CreatedAt.IsZero() || t.Before(e.CreatedAt) {
							e.CreatedAt = t
						}
					}
				}
			}
		}
		e.Canonicalize()
		yield(e, nil)
	}
}

// Runs yields the experiment's runs ordered by folder, each read once in
// full to find its times, params, status and damage.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		runs, err := s.index(ctx)
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		for _, ri := range runs {
			if ri.exp != exp {
				continue
			}
			r, omitted, size, err := readRun(ctx, ri)
			if err != nil {
				yield(schema.Run{}, err)
				return
			}
			s.mu.Lock()
			s.omitted[ri.ref], s.sizes[ri.ref] = omitted, size
			s.mu.Unlock()
			if !yield(r, nil) {
				return
			}
		}
	}
}

// stepper drops points whose step goes below an earlier point of the
// same key, counting them.
type stepper struct {
	last    map[string]int64
	dropped int64
}

func (st *stepper) ok(key string, step int64) bool {
	if st.last == nil {
		st.last = map[string]int64{}
	}
	if l, seen := st.last[key]; seen && step < l {
		st.dropped++
		return false
	}
	st.last[key] = step
	return true
}

const omitBackwards = "tensorboard metric points whose step went below an earlier point of their key"

// omitRenamed counts the tags of a train/ or validation/ subfolder given a
// key of their own (scan.go, subfolderKey): they are not left out, but not
// under the key the subfolder's name gives either.
const omitRenamed = "tensorboard tags of a train/ or validation/ folder renamed \"train folder/TAG\" (the run's own folder logs \"train/TAG\" too)"

// Size returns, for a run Runs listed, how many metric points and image
// bytes its pass found (what Metrics and Artifacts yield while the files
// do not change).
func (s *Source) Size(_ context.Context, r schema.Run) (points, bytes int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, ok := s.sizes[r.Origin]
	return size[0], size[1], ok
}

// readRun folds a run's metadata from one full pass; size is its metric
// points and image bytes.
func readRun(ctx context.Context, ri *runInfo) (r schema.Run, omitted map[string]int64, size [2]int64, err error) {
	r = schema.Run{Origin: ri.ref, Experiment: ri.exp, Name: ri.name, Status: schema.StatusFinished}
	omitted = map[string]int64{}
	params := map[string]string{}
	var tags []schema.Tag
	setParam := func(k, v string) {
		if old, ok := params[k]; ok && old != v {
			omitted["tensorboard param values differing from the first one given (first kept)"]++
			return
		}
		params[k] = v
	}
	var first, last float64
	var steps stepper
	var ps passState
	var decodeDamage []string
	var sessionEnd *tfevents.SessionEnd
	var start float64
	damage, perr := pass(ctx, ri, visitor{event: func(g *group, f *eventFile, off int64, ev *tfevents.Event) error {
		if ev.WallTime > 0 {
			if first == 0 || ev.WallTime < first {
				first = ev.WallTime
			}
			last = max(last, ev.WallTime)
		}
		for _, o := range ev.Other {
			omitted["tensorboard "+o+" records"]++
		}
		if ev.Writer != "" {
			tags = append(tags, schema.Tag{Key: TagPrefix + "writer", Value: ev.Writer})
		}
		if ev.HasSession {
			omitted["tensorboard session_log records"]++
		}
		for i := range ev.Values {
			it, err := ps.classify(g, &ev.Values[i])
			if err != nil {
				decodeDamage = append(decodeDamage, fmt.Sprintf("%s: offset %d: %v", f.rel, off, err))
				continue
			}
			switch it.kind {
			case kindSkip:
				omitted[it.omit]++
			case kindMetric:
				if steps.ok(it.key, ev.Step) {
					size[0]++
				}
			case kindHistogram:
				if _, err := histogramJSON(it); err != nil {
					decodeDamage = append(decodeDamage, fmt.Sprintf("%s: offset %d: histogram %s: %v", f.rel, off, it.key, err))
				}
			case kindImage:
				ims, err := images(it)
				if err != nil {
					decodeDamage = append(decodeDamage, fmt.Sprintf("%s: offset %d: image %s: %v", f.rel, off, it.key, err))
				}
				for _, im := range ims {
					size[1] += int64(len(im.data))
				}
			case kindText:
				if p, ok := textParams(it.key, it.tensor); ok {
					for k, v := range p {
						setParam(k, v)
					}
				}
			case kindHParams:
				h, err := tfevents.DecodeHParams(it.value.PluginContent)
				if err != nil {
					decodeDamage = append(decodeDamage, fmt.Sprintf("%s: offset %d: hparams: %v", f.rel, off, err))
					continue
				}
				switch {
				case h.Start != nil:
					for k, v := range h.Start.HParams {
						setParam(k, paramValue([]byte(v)))
					}
					start = h.Start.StartTimeSecs
					for k, v := range map[string]string{"hparams.group": h.Start.GroupName, "hparams.model_uri": h.Start.ModelURI, "hparams.monitor_url": h.Start.MonitorURL} {
						if v != "" {
							tags = append(tags, schema.Tag{Key: TagPrefix + k, Value: v})
						}
					}
				case h.End != nil:
					sessionEnd = h.End
				case h.Experiment != nil:
					b, _ := json.Marshal(map[string]any{"name": h.Experiment.Name, "description": h.Experiment.Description,
						"user": h.Experiment.User, "hparams": h.Experiment.HParamNames, "metrics": h.Experiment.MetricTags})
					tags = append(tags, schema.Tag{Key: TagPrefix + "hparams.experiment", Value: string(b)})
				}
			}
		}
		return nil
	}})
	if perr != nil {
		return schema.Run{}, nil, size, perr
	}
	if steps.dropped > 0 {
		omitted[omitBackwards] = steps.dropped
	}
	if ps.renamed > 0 {
		omitted[omitRenamed] = ps.renamed
	}
	if start > 0 && (first == 0 || start < first) {
		first = start
	}
	if first > 0 {
		r.Start = time.UnixMilli(millis(first)).UTC()
	}
	if last > 0 {
		r.End = time.UnixMilli(millis(last)).UTC()
	}
	if sessionEnd != nil {
		switch sessionEnd.Status {
		case tfevents.StatusFailure:
			r.Status = schema.StatusFailed
		case tfevents.StatusRunning:
			r.Status, r.End = schema.StatusRunning, time.Time{}
		}
		tags = append(tags, schema.Tag{Key: TagPrefix + "hparams.status", Value: sessionStatusName(sessionEnd.Status)})
		if sessionEnd.EndTimeSecs > 0 && r.Status != schema.StatusRunning {
			r.End = time.UnixMilli(millis(sessionEnd.EndTimeSecs)).UTC()
		}
	}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		r.Params = append(r.Params, schema.Param{Key: k, Value: params[k]})
	}
	tags = append(tags, schema.Tag{Key: TagPrefix + "folder", Value: ri.rel})
	seen := map[string]bool{}
	for _, t := range tags {
		if !seen[t.Key] {
			seen[t.Key] = true
			r.Tags = append(r.Tags, t)
		}
	}
	r.Damage = append(damage, decodeDamage...)
	r.Canonicalize()
	return r, omitted, size, nil
}

func sessionStatusName(s int) string {
	switch s {
	case tfevents.StatusSuccess:
		return "success"
	case tfevents.StatusFailure:
		return "failure"
	case tfevents.StatusRunning:
		return "running"
	}
	return "unknown"
}

// pager gathers values into pages of PageSize.
type pager[T any] struct {
	yield func([]T, error) bool
	page  []T
}

func (p *pager[T]) add(v T) error {
	if p.page == nil {
		p.page = make([]T, 0, PageSize)
	}
	p.page = append(p.page, v)
	if len(p.page) >= PageSize {
		page := p.page
		p.page = nil
		if !p.yield(page, nil) {
			return errStop
		}
	}
	return nil
}

// stream runs one pass over a run with the item handler fn, yielding what
// it adds to the pager.
func stream[T any](ctx context.Context, s *Source, run schema.Ref, fn func(p *pager[T], g *group, ev *tfevents.Event, it item) error) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		ri, err := s.find(ctx, run)
		if err != nil {
			yield(nil, err)
			return
		}
		p := &pager[T]{yield: yield}
		var ps passState
		_, err = pass(ctx, ri, visitor{event: func(g *group, f *eventFile, off int64, ev *tfevents.Event) error {
			for i := range ev.Values {
				it, err := ps.classify(g, &ev.Values[i])
				if err != nil {
					continue // named in the run's Damage
				}
				if err := fn(p, g, ev, it); err != nil {
					return err
				}
			}
			return nil
		}})
		switch {
		case errors.Is(err, errStop):
		case err != nil:
			yield(nil, err)
		case len(p.page) > 0:
			yield(p.page, nil)
		}
	}
}

// Metrics yields the run's scalars in file order; a point whose step is
// below an earlier point of its key is dropped (counted by Omitted).
func (s *Source) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	var steps stepper
	return stream(ctx, s, run, func(p *pager[schema.Metric], g *group, ev *tfevents.Event, it item) error {
		if it.kind != kindMetric || !steps.ok(it.key, ev.Step) {
			return nil
		}
		return p.add(schema.Metric{Key: it.key, Value: it.number, Step: ev.Step, Time: millis(ev.WallTime)})
	})
}

// imageCounter numbers the images of one key and step.
type imageCounter map[string]int

func (c imageCounter) next(key string, step int64) int {
	k := key + "\x00" + strconv.FormatInt(step, 10)
	n := c[k]
	c[k] = n + 1
	return n
}

// RichValues yields the run's histograms and images in file order. An
// image is a value of type "image-file" whose file is among the run's
// artifacts (see Artifacts).
func (s *Source) RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	counter := imageCounter{}
	return stream(ctx, s, run, func(p *pager[schema.RichValue], g *group, ev *tfevents.Event, it item) error {
		t := millis(ev.WallTime)
		switch it.kind {
		case kindHistogram:
			js, err := histogramJSON(it)
			if err != nil {
				return nil // named in the run's Damage (readRun)
			}
			return p.add(schema.RichValue{Key: it.key, Step: ev.Step, Time: t, Type: "tensorboard.histogram", JSON: js})
		case kindImage:
			ims, err := images(it)
			if err != nil {
				return nil // named in the run's Damage (readRun)
			}
			for _, im := range ims {
				format := imageFormat(im.data)
				path := imagePath(it.key, ev.Step, counter.next(it.key, ev.Step), format)
				js, _ := json.Marshal(map[string]any{"_type": "image-file", "path": path, "format": format,
					"width": im.width, "height": im.height, "size": len(im.data), "sha256": sha256Hex(im.data)})
				if err := p.add(schema.RichValue{Key: it.key, Step: ev.Step, Time: t, Type: "image-file", JSON: string(js), Files: []string{path}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Logs yields the run's text summaries that are not hyperparameter dumps,
// one line per line of text, each "KEY (step N): LINE".
func (s *Source) Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return stream(ctx, s, run, func(p *pager[schema.LogLine], g *group, ev *tfevents.Event, it item) error {
		if it.kind != kindText {
			return nil
		}
		if _, ok := textParams(it.key, it.tensor); ok {
			return nil
		}
		prefix := fmt.Sprintf("%s (step %d): ", strings.TrimSuffix(it.key, textSuffix), ev.Step)
		for _, line := range strings.Split(textOf(it.tensor), "\n") {
			if err := p.add(schema.LogLine{Time: millis(ev.WallTime), Stream: schema.Stdout, Line: prefix + line}); err != nil {
				return err
			}
		}
		return nil
	})
}

// imageRef is where Artifacts found one image.
type imageRef struct {
	path     string
	file     string
	offset   int64
	value, n int // index of the value in its event, of the image in the value
	size     int64
	digest   string
}

// Artifacts yields the run's images, sorted by path, as files under
// media/images/KEY/STEP_N.FORMAT (N numbers the images of one key and
// step). Each is read from its event file when opened.
func (s *Source) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		ri, err := s.find(ctx, run)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		var refs []imageRef
		counter := imageCounter{}
		var ps passState
		_, err = pass(ctx, ri, visitor{event: func(g *group, f *eventFile, off int64, ev *tfevents.Event) error {
			for i := range ev.Values {
				it, err := ps.classify(g, &ev.Values[i])
				if err != nil || it.kind != kindImage {
					continue
				}
				ims, err := images(it)
				if err != nil {
					continue
				}
				for n, im := range ims {
					refs = append(refs, imageRef{path: imagePath(it.key, ev.Step, counter.next(it.key, ev.Step), imageFormat(im.data)),
						file: f.path, offset: off, value: i, n: n, size: int64(len(im.data)), digest: "sha256:" + sha256Hex(im.data)})
				}
			}
			return nil
		}})
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		slices.SortFunc(refs, func(a, b imageRef) int { return strings.Compare(a.path, b.path) })
		for _, ref := range refs {
			ref := ref
			a := schema.Artifact{Path: ref.path, Size: ref.size, Digest: ref.digest,
				Open: func(ctx context.Context) (io.ReadCloser, error) { return openImage(ref) }}
			if !yield(a, nil) {
				return
			}
		}
	}
}

// openImage reads one image back from its event file.
func openImage(ref imageRef) (io.ReadCloser, error) {
	f, err := os.Open(ref.file)
	if err != nil {
		return nil, fault.Permanent(err)
	}
	defer f.Close()
	if _, err := f.Seek(ref.offset, io.SeekStart); err != nil {
		return nil, fault.Permanent(err)
	}
	data, _, err := tfevents.NewReader(f, ref.file).Next()
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("%s: offset %d: image record no longer readable", ref.file, ref.offset))
	}
	var ev tfevents.Event
	if err := tfevents.DecodeEvent(data, &ev); err != nil || ref.value >= len(ev.Values) {
		return nil, fault.Permanent(fmt.Errorf("%s: offset %d: image record changed", ref.file, ref.offset))
	}
	v := &ev.Values[ref.value]
	it := item{value: v}
	if v.Kind == tfevents.KindTensor {
		if it.tensor, err = tfevents.DecodeTensor(v.Raw); err != nil {
			return nil, fault.Permanent(fmt.Errorf("%s: offset %d: %w", ref.file, ref.offset, err))
		}
	}
	ims, err := images(it)
	if err != nil || ref.n >= len(ims) {
		return nil, fault.Permanent(fmt.Errorf("%s: offset %d: image record changed", ref.file, ref.offset))
	}
	return io.NopCloser(strings.NewReader(string(ims[ref.n].data))), nil
}

// Fingerprint hashes the names, sizes and modification times of the run's
// event files. A run damaged inside its files (a corrupted record, a
// truncated tail) gets one too: reading the same files again finds the same
// damage, and the ledger names it again while the run is unchanged (a file
// that grows or is written anew changes the fingerprint). A run with an
// event file that cannot be opened (its mode, which changes no size nor
// modification time) gets none, so it is read again each time.
func (s *Source) Fingerprint(ctx context.Context, run schema.Run) (string, error) {
	ri, err := s.find(ctx, run.Origin)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, g := range ri.groups {
		for _, f := range g.files {
			fi, err := os.Stat(f.path)
			if err != nil {
				return "", nil
			}
			fh, err := os.Open(f.path)
			if err != nil {
				return "", nil
			}
			fh.Close()
			fmt.Fprintf(h, "%s\t%d\t%d\n", f.rel, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return "tensorboard1:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Close makes every later call fail with ErrClosed.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
