package check

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// compareManifests compares the W&B Artifacts versions a run logged and
// used, field by field and entry by entry, when both sides list them
// (sources.ManifestLister). Against a destination that cannot list them,
// the manifest files compareFiles compares are what proves them.
func (res *Result) compareManifests(ctx context.Context, src, dst sources.Source, run schema.Ref) error {
	wl, ok := src.(sources.ManifestLister)
	if !ok {
		return nil
	}
	gl, ok := dst.(sources.ManifestLister)
	if !ok {
		return nil
	}
	want, err := manifestsByKey(ctx, wl, run)
	if err != nil {
		return fmt.Errorf("source run %s artifact manifests: %w", run, err)
	}
	got, err := manifestsByKey(ctx, gl, run)
	if err != nil {
		return fmt.Errorf("destination run %s artifact manifests: %w", run, err)
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		w := want[k]
		g, ok := got[k]
		if !ok {
			res.add(run, "artifact "+k+" missing", fmt.Sprintf("%d entries", len(w.Entries)), "")
			continue
		}
		compareManifest(res, run, k, w, g)
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			res.add(run, "artifact "+k+" unexpected", "", fmt.Sprintf("%d entries", len(got[k].Entries)))
		}
	}
	return nil
}

// manifestsByKey lists a run's versions by "role name:label".
func manifestsByKey(ctx context.Context, l sources.ManifestLister, run schema.Ref) (map[string]schema.ArtifactManifest, error) {
	out := map[string]schema.ArtifactManifest{}
	for m, err := range l.Manifests(ctx, run) {
		if err != nil {
			return nil, err
		}
		k := string(m.Role) + " " + m.Name + ":" + m.Label()
		if m.Label() == "" && len(m.Aliases) > 0 {
			k += m.Aliases[0]
		}
		out[k] = m
	}
	return out, nil
}

// compareManifest adds a difference for each field and entry of one
// version that differs.
func compareManifest(res *Result, run schema.Ref, k string, w, g schema.ArtifactManifest) {
	wv, gv := reflect.ValueOf(w), reflect.ValueOf(g)
	for i := 0; i < wv.NumField(); i++ {
		name := wv.Type().Field(i).Name
		if name == "Entries" {
			continue
		}
		a, b := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !fieldEqual(a, b) {
			res.add(run, "artifact "+k+" "+name, show(a), show(b))
		}
	}
	we, ge := entryMap(w.Entries), entryMap(g.Entries)
	for _, p := range slices.Sorted(maps.Keys(we)) {
		e, ok := ge[p]
		switch {
		case !ok:
			res.add(run, "artifact "+k+" entry "+p+" missing", show(we[p]), "")
		case e != we[p]:
			res.add(run, "artifact "+k+" entry "+p, show(we[p]), show(e))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(ge)) {
		if _, ok := we[p]; !ok {
			res.add(run, "artifact "+k+" entry "+p+" unexpected", "", show(ge[p]))
		}
	}
}

func entryMap(es []schema.ArtifactEntry) map[string]schema.ArtifactEntry {
	out := make(map[string]schema.ArtifactEntry, len(es))
	for _, e := range es {
		out[e.Path] = e
	}
	return out
}
