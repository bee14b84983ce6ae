package parquetdir_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

func registry(t *testing.T, dir string) []schema.RegisteredModel {
	t.Helper()
	src, err := srcparquet.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []schema.RegisteredModel
	for m, err := range src.RegisteredModels(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestRegistryArchiveToArchive: an archive's registry copied by the engine
// into another archive arrives whole, ordered by name; a version whose
// source run neither archive holds is counted; the copy's origins are the
// first archive's, so a second copy writes no model again.
func TestRegistryArchiveToArchive(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	d := dataset.Canonical()
	run := d.Runs[0].Run.Origin
	models := []schema.RegisteredModel{
		{Origin: schema.Ref{System: "mlflow", ID: "h/model/zeta"}, Name: "zeta", Description: "z", CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
			Tags:    []schema.Tag{{Key: "k", Value: "v"}},
			Aliases: []schema.ModelAlias{{Alias: "prod", Version: 2}},
			Versions: []schema.ModelVersion{
				{Version: 1, Stage: "Archived", Status: "READY", Source: "mlflow-artifacts:/1/x/artifacts/model", Run: run, RunPath: "model", CreatedAt: t0},
				{Version: 2, Stage: "Production", Status: "READY", Source: "runs:/gone/model", Run: schema.Ref{System: "mlflow", ID: "h/gone"}, RunPath: "model",
					Tags: []schema.Tag{{Key: "a", Value: "1"}}, Description: "two", CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)},
			}},
		{Origin: schema.Ref{System: "mlflow", ID: "h/model/alpha"}, Name: "alpha"},
	}
	first := filepath.Join(t.TempDir(), "first")
	dst, err := parquetdir.New(first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range models {
		m.Canonicalize()
		if _, err := dst.PutRegisteredModel(context.Background(), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	want := []schema.RegisteredModel{models[1], models[0]}
	same := func(what string, got []schema.RegisteredModel) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			w, _ := json.MarshalIndent(want, "", " ")
			g, _ := json.MarshalIndent(got, "", " ")
			t.Fatalf("%s: registry differs\nwant %s\ngot  %s", what, w, g)
		}
	}
	same("first archive", registry(t, first))

	second := filepath.Join(t.TempDir(), "second")
	for i := range 2 {
		src, err := srcparquet.New(first, 0)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := parquetdir.New(second)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := transfer.Copy(context.Background(), src, dst, transfer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		if g := rep.Registry; g == nil || g.Models != 2 || g.Versions != 2 {
			t.Fatalf("copy %d: registry %+v", i, g)
		}
		if n := rep.Coverage[parquetdir.CoverageVersionNoRun]; n != 1 {
			t.Fatalf("copy %d: coverage %v, want the version of run h/gone counted", i, rep.Coverage)
		}
		same("second archive", registry(t, second))
		src.Close()
	}
	st, err := archive.LoadState(second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Manifest.Models {
		if m.Snapshot != 1 {
			t.Fatalf("the second copy wrote model %s again (snapshot %d)", m.Name, m.Snapshot)
		}
	}
}
