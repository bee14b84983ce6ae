package schema

import (
	"context"
	"io"
)

// Artifact is one file belonging to a run.
type Artifact struct {
	Path   string // slash-separated, relative to the run's artifact root
	Size   int64  // bytes; -1 if unknown
	Digest string // "sha256:<hex>" when known, else ""

	// Open returns the file's content. It is nil when the content cannot be
	// read (Problem then says why); callers must close what it returns.
	Open func(ctx context.Context) (io.ReadCloser, error) `json:"-"`

	// Problem says why the file cannot be transferred (a dangling symlink,
	// a file the source lacks), or is "" when it can.
	Problem string `json:",omitempty"`
	// Inherited says Problem is one the source only carries: the source
	// holds the run as an earlier copy wrote it (a runferry archive, SQL
	// database or MLflow copy), and that copy recorded the file as not
	// copied from the original source. It is the original source's gap,
	// not this source's: the problem travels on, named as inherited.
	Inherited bool `json:",omitempty"`
}
