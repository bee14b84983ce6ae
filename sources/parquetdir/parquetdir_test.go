package parquetdir_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	sinkparquet "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	"github.com/runferry/runferry/sources/parquetdir"
	"github.com/runferry/runferry/sources/sourcetest"
)

// writeArchive copies d into a new archive under t's temp dir and returns
// its path.
func writeArchive(t testing.TB, dir string, d *dataset.Dataset) {
	t.Helper()
	dst, err := sinkparquet.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("writing the fixture archive: %v %+v", err, rep.Totals)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// TestConformance runs the source conformance suite on an archive of the
// canonical dataset in each kind of store (testenv.ArchiveStores): a local
// folder, and a bucket of each object-storage server on 127.0.0.1
// (versitygw for S3, Azurite, fake-gcs-server).
func TestConformance(t *testing.T) {
	for _, store := range testenv.ArchiveStores() {
		t.Run(store.Name, func(t *testing.T) {
			fresh := store.Start(t)
			loc := fresh(t, "archive")
			writeArchive(t, loc, dataset.Canonical())
			sourcetest.Run(t, sourcetest.Opt{
				Open: func(t *testing.T) sources.Source {
					src, err := parquetdir.New(loc, 0)
					if err != nil {
						t.Fatal(err)
					}
					return src
				},
				Want: dataset.Canonical(),
				Skip: map[string]string{"OriginsNameTheInstance": "an archive originates nothing: it yields the origins it was copied from, which name their own instance, so two archives of the same data must yield the same origins, as MatchesWant checks"},
			})
		})
	}
}

// TestSnapshotOption reads an earlier snapshot through the location option.
func TestSnapshotOption(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	v1 := dataset.Canonical()
	writeArchive(t, dir, v1)
	v2 := dataset.Canonical()
	v2.Runs[0].Run.Notes = "edited"
	v2.Runs[0].Metrics = v2.Runs[0].Metrics[:10]
	writeArchive(t, dir, v2)
	ctx := context.Background()
	for _, tt := range []struct {
		loc  string
		want *dataset.Dataset
	}{{"parquet:" + dir + "?snapshot=1", v1}, {"parquet:" + dir + "?snapshot=2", v2}, {"parquet:" + dir, v2}} {
		loc, err := location.Parse(tt.loc, func(string) (location.Kind, bool) { return location.PathKind, true })
		if err != nil {
			t.Fatal(err)
		}
		src, err := parquetdir.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dataset.Read(ctx, src)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		if diff := dataset.Diff(tt.want, got, dataset.DiffOptions{}); diff != nil {
			t.Errorf("%s:\n%s", tt.loc, strings.Join(diff, "\n"))
		}
	}
	loc, _ := location.Parse("parquet:"+dir+"?snapshot=7", func(string) (location.Kind, bool) { return location.PathKind, true })
	if _, err := parquetdir.Open(ctx, loc); err == nil || !strings.Contains(err.Error(), "000007.json") {
		t.Errorf("missing snapshot: err %v, want one naming snapshots/000007.json", err)
	}
}
