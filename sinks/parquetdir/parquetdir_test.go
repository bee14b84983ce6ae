package parquetdir_test

import (
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

// failureStride is, per store kind, how many operations apart the sink
// suite injects failures: at every one on the local folder and S3, which
// share this code above the Store; on Azurite (about 3x as slow as the S3
// server) and fake-gcs-server (50 s at every one under load, against 44 s
// on S3) every third is enough to cross their drivers' failure paths.
var failureStride = map[string]int{"azure": 3, "gcs": 3}

// TestConformance runs the sink conformance suite on an archive in each
// kind of store (testenv.ArchiveStores): a local folder, and a bucket of
// each object-storage server on 127.0.0.1 (versitygw for S3, Azurite,
// fake-gcs-server).
func TestConformance(t *testing.T) {
	for _, store := range testenv.ArchiveStores() {
		t.Run(store.Name, func(t *testing.T) {
			fresh := store.Start(t)
			var loc string
			open := func(t *testing.T) sinks.Sink {
				s, err := parquetdir.New(loc)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			sinktest.Run(t, sinktest.Opt{
				New: func(t *testing.T) (sinks.Sink, func() sources.Source) {
					loc = fresh(t, "archive")
					path := loc
					return open(t), func() sources.Source {
						src, err := srcparquet.New(path, 0)
						if err != nil {
							t.Fatal(err)
						}
						return src
					}
				},
				Reopen: open,
				// The metrics files of a copy under a former origin name it in
				// every row: that copy is written again, not extended.
				FormerAppendRefused: "archive holds the run under its former origin",
				FailureStride:       failureStride[store.Name],
			})
		})
	}
}
