package parquetdir_test

import (
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

func TestConformance(t *testing.T) {
	var dir string
	open := func(t *testing.T) sinks.Sink {
		s, err := parquetdir.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sinktest.Run(t, sinktest.Opt{
		New: func(t *testing.T) (sinks.Sink, func() sources.Source) {
			dir = filepath.Join(t.TempDir(), "archive")
			path := dir
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
	})
}

// TestConformanceS3 runs the sink conformance suite on an archive in a
// bucket of a real S3 server (versitygw on 127.0.0.1).
func TestConformanceS3(t *testing.T) {
	s3 := testenv.SharedS3(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("S3 server log:\n%s", s3.LogTail(40))
		}
	})
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
			s3.Env(t)
			loc = s3.Location(s3.CreateBucket(t, "sinktest"), "archive")
			path := loc
			return open(t), func() sources.Source {
				src, err := srcparquet.New(path, 0)
				if err != nil {
					t.Fatal(err)
				}
				return src
			}
		},
		Reopen:              open,
		FormerAppendRefused: "archive holds the run under its former origin",
	})
}

// TestConformanceAzure runs the sink conformance suite on an archive in a
// container of Azurite (Azure's storage emulator on 127.0.0.1).
func TestConformanceAzure(t *testing.T) {
	az := testenv.SharedAzurite(t)
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
			az.Env(t)
			loc = az.Location(az.CreateContainer(t, "sinktest"), "archive")
			path := loc
			return open(t), func() sources.Source {
				src, err := srcparquet.New(path, 0)
				if err != nil {
					t.Fatal(err)
				}
				return src
			}
		},
		Reopen:              open,
		FormerAppendRefused: "archive holds the run under its former origin",
		// Every operation fails once on the local folder and on S3, which
		// share this code above the Store; on Azurite (about 3x as slow as
		// the S3 server) every third is enough to cross the Azure driver's
		// failure paths.
		FailureStride: 3,
	})
}
