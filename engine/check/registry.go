package check

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// compareRegistry compares the model registries when both sides hold one
// (sources.RegistryReader): every registered model of the source, matched
// by origin, else by name (name, description, tags, aliases, creation
// time) and each of its versions by the source's version number (description, tags, stage, status, creation
// time, the origin of its run, and where its files are: the path inside
// that run's files, or the source URI when the files are not under the
// run). With a selective filter, only models with a version from a
// compared run are compared. Update times are not compared: writing a
// copy is a change, so a destination shows the time of the copy. A
// destination registry that cannot be read for a permanent reason (a
// damaged archive file) is a difference naming the reason. Models the
// destination holds beyond the source's are not differences: a registry is
// shared by many writers.
func (res *Result) compareRegistry(ctx context.Context, src, dst sources.Source, filtered bool, seen map[schema.Ref]bool) error {
	sr, ok1 := src.(sources.RegistryReader)
	dr, ok2 := dst.(sources.RegistryReader)
	if !ok1 || !ok2 {
		return nil
	}
	got := destModels{byOrigin: map[schema.Ref]schema.RegisteredModel{}, byName: map[string]schema.RegisteredModel{}}
	for m, err := range dr.RegisteredModels(ctx) {
		if err != nil {
			if !unreadable(err) {
				return fmt.Errorf("destination: model registry: %w", err)
			}
			// What a user of the destination cannot read is a difference,
			// as a run's files are.
			res.Differences = append(res.Differences, Difference{What: "destination: model registry unreadable", Got: err.Error()})
			return nil
		}
		got.byOrigin[m.Origin] = m
		if _, ok := got.byName[m.Name]; !ok {
			got.byName[m.Name] = m
		}
	}
	for m, err := range sr.RegisteredModels(ctx) {
		if err != nil {
			return fmt.Errorf("source: model registry: %w", err)
		}
		if filtered && !versionFrom(m, seen) {
			continue
		}
		res.Models++
		res.compareModel(m, got)
	}
	return nil
}

func versionFrom(m schema.RegisteredModel, runs map[schema.Ref]bool) bool {
	for _, v := range m.Versions {
		if runs[v.Run] {
			return true
		}
	}
	return false
}

// destModels are the destination's registered models by origin and by
// name (the first of each name).
type destModels struct {
	byOrigin map[schema.Ref]schema.RegisteredModel
	byName   map[string]schema.RegisteredModel
}

// find returns the destination's copy of want: the model of its origin
// (a destination such as an archive may hold models of one name from
// several sources), else the model of its name.
func (d destModels) find(want schema.RegisteredModel) (schema.RegisteredModel, bool) {
	if m, ok := d.byOrigin[want.Origin]; ok && !want.Origin.IsZero() {
		return m, true
	}
	m, ok := d.byName[want.Name]
	return m, ok
}

func (res *Result) compareModel(want schema.RegisteredModel, dst destModels) {
	id := "registered model " + want.Name
	add := func(what, w, g string) {
		res.Differences = append(res.Differences, Difference{Run: id, What: what, Want: w, Got: g})
	}
	got, ok := dst.find(want)
	if !ok {
		add("missing registered model", want.Name, "")
		return
	}
	if want.Name != got.Name {
		add("name", want.Name, got.Name)
	}
	if want.Description != got.Description {
		add("description", want.Description, got.Description)
	}
	if !reflect.DeepEqual(want.Tags, got.Tags) {
		add("tags", jsonText(want.Tags), jsonText(got.Tags))
	}
	if !reflect.DeepEqual(want.Aliases, got.Aliases) {
		add("aliases", jsonText(want.Aliases), jsonText(got.Aliases))
	}
	if !want.CreatedAt.Equal(got.CreatedAt) {
		add("creation time", timeText(want.CreatedAt), timeText(got.CreatedAt))
	}
	versions := map[int64]schema.ModelVersion{}
	for _, v := range got.Versions {
		versions[v.Version] = v
	}
	for _, w := range want.Versions {
		g, ok := versions[w.Version]
		if !ok {
			add(fmt.Sprintf("missing version %d", w.Version), w.Source, "")
			continue
		}
		delete(versions, w.Version)
		vid := fmt.Sprintf("version %d ", w.Version)
		if w.Description != g.Description {
			add(vid+"description", w.Description, g.Description)
		}
		if !reflect.DeepEqual(w.Tags, g.Tags) {
			add(vid+"tags", jsonText(w.Tags), jsonText(g.Tags))
		}
		if w.Stage != g.Stage {
			add(vid+"stage", w.Stage, g.Stage)
		}
		if w.Status != g.Status {
			add(vid+"status", w.Status, g.Status)
		}
		if !w.CreatedAt.Equal(g.CreatedAt) {
			add(vid+"creation time", timeText(w.CreatedAt), timeText(g.CreatedAt))
		}
		if w.Run != g.Run {
			add(vid+"source run", w.Run.String(), g.Run.String())
		}
		// Files under the run are compared by their path there (the
		// destination's run has other URIs); files elsewhere by URI.
		if w.RunPath != g.RunPath || w.RunPath == "" && w.Source != g.Source {
			add(vid+"model files", w.Source, g.Source)
		}
	}
	for n := range versions {
		add(fmt.Sprintf("unexpected version %d in the destination (not in the source)", n), "", versions[n].Source)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
