package tensorboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/tfevents"
)

// kind is what one summary value maps to.
type kind int

const (
	kindSkip      kind = iota // not mapped: counted under omit
	kindMetric                // a number
	kindText                  // text (params or log lines)
	kindHParams               // hparams plugin data
	kindHistogram             // a histogram (TF1 proto or TF2 tensor)
	kindImage                 // images (TF1 proto or TF2 tensor)
)

// tagInfo is what a pass remembers of one tag of one group: its key and
// the plugin its first metadata named (TF2 writers name it only once).
type tagInfo struct {
	key    string
	plugin string
}

// item is one summary value, classified.
type item struct {
	kind   kind
	key    string
	number float64
	tensor tfevents.Tensor // decoded for tensors other than metrics' fast path
	value  *tfevents.Value
	omit   string // for kindSkip: the coverage kind
}

// passState is one pass over a run: the tags seen per group.
type passState struct {
	tags map[*group]map[string]*tagInfo
	keys map[string]bool // every key given so far, of every group
	// renamed counts the tags of a merged subfolder given another key
	// because the run's own folder gave the one they would have.
	renamed int64
}

// info returns the tag's info in g, remembering the plugin named by v.
func (ps *passState) info(g *group, v *tfevents.Value) *tagInfo {
	if ps.tags == nil {
		ps.tags = map[*group]map[string]*tagInfo{}
	}
	m := ps.tags[g]
	if m == nil {
		m = map[string]*tagInfo{}
		ps.tags[g] = m
	}
	ti := m[string(v.Tag)]
	if ti == nil {
		ti = &tagInfo{key: subfolderKey(ps.keys, g.prefix, string(v.Tag))}
		if ti.key != g.prefix+string(v.Tag) {
			ps.renamed++
		}
		if ps.keys == nil {
			ps.keys = map[string]bool{}
		}
		ps.keys[ti.key] = true
		m[string(v.Tag)] = ti
	}
	if len(v.Plugin) > 0 && ti.plugin != string(v.Plugin) {
		ti.plugin = string(v.Plugin)
	}
	return ti
}

// subfolderKey is the key of tag in the group of prefix, given the keys
// used so far: prefix+tag, unless a merged subfolder's (prefix "train/")
// prefix+tag is taken already, which only the run's own folder can have
// done (its group is read first) by logging "train/loss" itself: then
// "train folder/loss" (or "train folder 2/loss", ... if that is taken
// too), so that the two series stay two keys rather than one.
func subfolderKey(used map[string]bool, prefix, tag string) string {
	key := prefix + tag
	if prefix == "" || !used[key] {
		return key
	}
	folder := strings.TrimSuffix(prefix, "/")
	for n := 1; ; n++ {
		k := folder + " folder/" + tag
		if n > 1 {
			k = folder + " folder " + strconv.Itoa(n) + "/" + tag
		}
		if !used[k] {
			return k
		}
	}
}

// classify maps one value. err is for a value that cannot be decoded.
func (ps *passState) classify(g *group, v *tfevents.Value) (item, error) {
	ti := ps.info(g, v)
	it := item{key: ti.key, value: v}
	if ti.plugin == tfevents.PluginHParams {
		it.kind = kindHParams
		return it, nil
	}
	switch v.Kind {
	case tfevents.KindSimple:
		it.kind, it.number = kindMetric, float64(v.Simple)
		return it, nil
	case tfevents.KindImage:
		it.kind = kindImage
		return it, nil
	case tfevents.KindHistogram:
		it.kind = kindHistogram
		return it, nil
	case tfevents.KindAudio:
		it.omit = "tensorboard audio summaries"
		return it, nil
	case tfevents.KindOldHisto:
		it.omit = "tensorboard old-style histograms"
		return it, nil
	case tfevents.KindNone:
		it.omit = "tensorboard summary values without data"
		return it, nil
	}
	switch ti.plugin {
	case "", tfevents.PluginScalars, tfevents.PluginText, tfevents.PluginHistograms, tfevents.PluginImages:
	default:
		it.omit = "tensorboard " + ti.plugin + " plugin summaries"
		return it, nil
	}
	if ti.plugin == "" || ti.plugin == tfevents.PluginScalars {
		// The common case, a TF2 scalar, without allocating.
		if f, _, ok := tfevents.ScalarTensor(v.Raw); ok {
			it.kind, it.number = kindMetric, f
			return it, nil
		}
	}
	t, err := tfevents.DecodeTensor(v.Raw)
	if err != nil {
		return it, fmt.Errorf("tag %s: %w", v.Tag, err)
	}
	it.tensor = t
	switch {
	case ti.plugin == tfevents.PluginText || ti.plugin == "" && t.DType == tfevents.DTString:
		it.kind = kindText
	case ti.plugin == tfevents.PluginHistograms:
		it.kind = kindHistogram
	case ti.plugin == tfevents.PluginImages:
		it.kind = kindImage
	default:
		f, ok := t.Scalar()
		if !ok {
			it.omit = "tensorboard tensor summaries that are not scalars"
			return it, nil
		}
		it.kind, it.number = kindMetric, f
	}
	return it, nil
}

// millis converts a wall time in seconds to Unix milliseconds: rounded to
// the microsecond, then floored.
func millis(wall float64) int64 {
	us := math.Round(wall * 1e6)
	return int64(math.Floor(us / 1000))
}

// visitor gets what a pass reads. Returning an error stops the pass.
type visitor struct {
	// event gets every decoded event (its Values included).
	event func(g *group, f *eventFile, off int64, ev *tfevents.Event) error
}

// errStop stops a pass when the consumer stopped iterating.
var errStop = errors.New("stop")

// pass reads the run's event files in order (groups by prefix, files by
// first wall time) and calls v. Damage (unreadable files, truncated or
// corrupt records, undecodable events) is returned as notes naming the
// file (relative to the root) and the offset; it does not stop the pass.
func pass(ctx context.Context, ri *runInfo, v visitor) (damage []string, err error) {
	var ev tfevents.Event
	for _, g := range ri.groups {
		for _, f := range g.files {
			fh, err := os.Open(f.path)
			if err != nil {
				damage = append(damage, fmt.Sprintf("%s: %v", f.rel, unwrapPath(err)))
				continue
			}
			r := tfevents.NewReader(fh, f.rel)
			for n := 0; ; n++ {
				if n%256 == 0 && ctx.Err() != nil {
					fh.Close()
					return damage, ctx.Err()
				}
				data, off, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					damage = append(damage, err.Error())
					break
				}
				if err := tfevents.DecodeEvent(data, &ev); err != nil {
					damage = append(damage, fmt.Sprintf("%s: offset %d: undecodable event: %v", f.rel, off, err))
					continue
				}
				if err := v.event(g, f, off, &ev); err != nil {
					fh.Close()
					return damage, err
				}
			}
			fh.Close()
			for _, d := range r.Damage() {
				damage = append(damage, d.Error())
			}
		}
	}
	return damage, nil
}

// unwrapPath drops the absolute path from an *os.PathError, the file being
// named relative to the root instead.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
