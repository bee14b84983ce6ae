package parquetdir

import (
	"context"
	"iter"
	"strings"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.RunFilterer = (*Source)(nil)

// FilteredRuns yields the runs of exp that f may select, sorted by origin,
// choosing them by the origins the manifest lists before reading anything:
// a job restoring one run of a large archive (--run) reads that run's
// objects only. --since and --until are left to the engine (a run's start
// is in its runs/ file, so narrowing by it would read every run).
func (s *Source) FilteredRuns(ctx context.Context, exp schema.Ref, f sources.RunFilter) iter.Seq2[schema.Run, error] {
	if len(f.RunIDs) == 0 {
		return s.Runs(ctx, exp)
	}
	return s.runs(ctx, exp, func(e archive.RunEntry) bool { return selectsOrigin(f.RunIDs, e.Origin) })
}

// selectsOrigin reports whether one of the --run ids names the run with
// origin ("system:id"): the origin itself, its id, or a suffix of its id
// after a "/" (as the engine's filter matches them).
func selectsOrigin(ids []string, origin string) bool {
	ref, ok := schema.ParseRef(origin)
	if !ok {
		return true // not ours to judge: the engine's filter will
	}
	for _, id := range ids {
		if id == origin || id == ref.ID || strings.HasSuffix(ref.ID, "/"+id) {
			return true
		}
	}
	return false
}
