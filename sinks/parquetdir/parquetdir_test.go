package parquetdir_test

import (
	"path/filepath"
	"testing"

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
