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

// failureStride and failureFirst say, per store kind, which operations
// the sink suite injects failures at (sinktest.Opt.FailureStride,
// FailureFirst). On the local folder, every one. The object stores share
// all the sink's code above the Store with the local folder, so each
// fails every third operation, S3 from the first, Azure from the second,
// GCS from the third: together they fail every operation once, and each
// store still sees every kind of failure (retryable, permanent, fatal),
// spread over the whole copy and the whole append. S3 failed every
// operation before (42 s of the copy's suite alone under load); Azurite
// and fake-gcs-server (3x as slow) every third from the first, and then
// (the kind taken from the operation's number) permanent failures only.
var (
	failureStride = map[string]int{"s3": 3, "azure": 3, "gcs": 3}
	failureFirst  = map[string]int{"s3": 1, "azure": 2, "gcs": 3}
)

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
				FailureFirst:        failureFirst[store.Name],
			})
		})
	}
}
