package wandbcloud

import (
	"context"
	"iter"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/schema"
)

// ListedExtrasBudget bounds the bytes (roughly: the lengths of the URLs,
// names and digests) of what runs' listing pages carried in export form
// beyond the run itself (parquet history exports, files, artifact
// versions) that the source keeps until the run is read. Runs whose page
// is fetched in export form once it is spent keep nothing and ask for
// their exports and contents when read, one request each, so that memory
// does not grow with the number of runs.
var ListedExtrasBudget int64 = 32 << 20

// listedExtras is what a run's listing page carried for its export.
type listedExtras struct {
	exports  *wandbapi.Exports
	contents *wandbapi.RunContents
	size     int64
}

// listedPage is a page of the plain listing not yet fetched in export
// form: once one of its runs is read, the page is (once).
type listedPage struct {
	page   *wandbapi.RunPage
	prefix string // entity/project/ of its runs' origin ids
	once   sync.Once
}

// listRuns yields the runs of project that match query, oldest first, from
// the plain listing, noting each run's page: the first time a run of a
// page is read (its exports or contents are asked for), the page is
// fetched again in export form (exportPage), so that a sync that reads no
// run asks for no run data and a copy of a page of runs costs 2 requests.
// With Config.PagedHistory, no page is fetched in export form.
//
// After ReadsEveryRun, each page is asked once, in export form only
// (wandbapi.Client.ExportListing): a copy of a page of runs costs 1
// request.
func (s *Source) listRuns(ctx context.Context, project string, query map[string]any) iter.Seq2[wandbapi.Run, error] {
	if s.cfg.PagedHistory {
		return s.api.RunsWhere(ctx, s.cfg.Entity, project, query)
	}
	if s.readsAll.Load() {
		return s.exportListing(ctx, project, query)
	}
	return func(yield func(wandbapi.Run, error) bool) {
		var lp *listedPage
		for pr, err := range s.api.RunPages(ctx, s.cfg.Entity, project, query) {
			if err != nil {
				yield(wandbapi.Run{}, err)
				return
			}
			prefix := s.cfg.Entity + "/" + project + "/"
			if lp == nil || lp.page != pr.Page {
				lp = &listedPage{page: pr.Page, prefix: prefix}
			}
			id := prefix + pr.Name
			s.mu.Lock()
			if s.pages == nil {
				s.pages = map[string]*listedPage{}
			}
			s.pages[id] = lp
			s.ahead.listed(id)
			s.mu.Unlock()
			if !yield(pr.Run, nil) {
				return
			}
		}
	}
}

// ReadsEveryRun tells the source that the job will read (nearly) every
// run it lists, a first copy whose ledger holds no run of it
// (sources.EveryRunReader): from then on its listings ask each page of
// runs once, in export form only, so that a run read needs no second
// request for its page. A job that reads few of the runs it lists (a
// sync with a ledger) does not call it and keeps the plain listing, which
// carries no run data (the export form would cost no more requests, but
// the server's work and the answer's bytes for every run listed).
func (s *Source) ReadsEveryRun() { s.readsAll.Store(true) }

// exportListing is listRuns in export form only: what each run's page
// carried is kept for its read (keepExtras, within ListedExtrasBudget)
// and its bytes for Estimate, as exportPage keeps them.
func (s *Source) exportListing(ctx context.Context, project string, query map[string]any) iter.Seq2[wandbapi.Run, error] {
	return func(yield func(wandbapi.Run, error) bool) {
		prefix := s.cfg.Entity + "/" + project + "/"
		for lr, err := range s.api.ExportListing(ctx, s.cfg.Entity, project, query) {
			if err != nil {
				yield(wandbapi.Run{}, err)
				return
			}
			id := prefix + lr.Name
			s.noteFileBytes(id, lr.Contents)
			s.keepExtras(id, lr)
			s.mu.Lock()
			s.ahead.listed(id)
			s.mu.Unlock()
			if !yield(lr.Run, nil) {
				return
			}
		}
	}
}

// exportPage fetches, once, the listing page of run id in export form
// (wandbapi.Client.ExportPage) and keeps what it carries for the page's
// runs, within ListedExtrasBudget. It does nothing when the run's page
// was fetched so already, or was not noted (Config.PagedHistory, a run
// not listed). When the page cannot be fetched so, or no longer holds a
// run, that run's exports and contents are asked for alone when read, as
// they would be without the page.
func (s *Source) exportPage(ctx context.Context, id string) {
	s.mu.Lock()
	lp := s.pages[id]
	s.mu.Unlock()
	if lp == nil {
		return
	}
	lp.once.Do(func() {
		listed, err := s.api.ExportPage(ctx, lp.page)
		s.mu.Lock()
		for _, n := range lp.page.Names {
			if s.pages[lp.prefix+n] == lp {
				delete(s.pages, lp.prefix+n)
			}
		}
		s.mu.Unlock()
		if err != nil {
			return // the runs are asked for alone; that error is theirs
		}
		names := make(map[string]bool, len(lp.page.Names))
		for _, n := range lp.page.Names {
			names[n] = true
		}
		for _, lr := range listed {
			if names[lr.Name] {
				s.noteFileBytes(lp.prefix+lr.Name, lr.Contents)
				s.keepExtras(lp.prefix+lr.Name, lr)
			}
		}
	})
}

// noteFileBytes keeps, for Estimate, the bytes of the run's files (code
// only with Config.Code) and of the artifact versions it logged that c
// lists (nil: none listed), and for EstimateFiles how many files its copy
// carries, when c tells them all.
func (s *Source) noteFileBytes(id string, c *wandbapi.RunContents) {
	if c == nil {
		return
	}
	var n, files int64
	for _, f := range c.Files {
		if !strings.HasPrefix(f.Name, "code/") || s.cfg.Code {
			n += f.SizeBytes
			files++
		}
	}
	counted := true
	for _, a := range c.Logged {
		n += a.Size
		files++ // its manifest.json
		if a.FileCount == nil {
			counted = false
		} else {
			files += *a.FileCount
		}
	}
	if len(c.Used) > 0 {
		files++ // wandb-used-artifacts.json
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fileBytes == nil {
		s.fileBytes = map[string]int64{}
	}
	s.fileBytes[id] = n
	if s.fileCount == nil {
		s.fileCount = map[string]int64{}
	}
	if counted {
		s.fileCount[id] = files
	} else {
		delete(s.fileCount, id)
	}
}

// keepExtras keeps what lr's listing carried under the run's origin id,
// if the budget allows.
func (s *Source) keepExtras(id string, lr wandbapi.ListedRun) {
	if lr.Exports == nil && lr.Contents == nil {
		return
	}
	x := &listedExtras{exports: lr.Exports, contents: lr.Contents, size: extrasSize(lr)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.extras[id]; old != nil {
		s.extrasBytes -= old.size
		delete(s.extras, id)
	}
	if s.extrasBytes+x.size > ListedExtrasBudget {
		return
	}
	if s.extras == nil {
		s.extras = map[string]*listedExtras{}
	}
	s.extras[id] = x
	s.extrasBytes += x.size
}

// takeExports returns (and forgets) the exports the run's listing page
// carried in export form (see exportPage, called before); ok is false
// when it carried none or they were taken.
func (s *Source) takeExports(id string) (e *wandbapi.Exports, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.extras[id]
	if x == nil || x.exports == nil {
		return nil, false
	}
	e, x.exports = x.exports, nil
	s.dropIfEmpty(id, x)
	return e, true
}

// listedContents returns the files and artifact versions the run's
// listing carried; take forgets them (Artifacts, which the transfer
// calls once a run; Manifests, which check calls, leaves them).
func (s *Source) listedContents(id string, take bool) (c wandbapi.RunContents, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.extras[id]
	if x == nil || x.contents == nil {
		return c, false
	}
	c = *x.contents
	if take {
		x.contents = nil
		s.dropIfEmpty(id, x)
	}
	return c, true
}

// dropIfEmpty forgets x once nothing is left in it; s.mu is held.
func (s *Source) dropIfEmpty(id string, x *listedExtras) {
	if x.exports == nil && x.contents == nil {
		delete(s.extras, id)
		s.extrasBytes -= x.size
	}
}

// extrasSize is roughly the bytes lr's extras hold.
func extrasSize(lr wandbapi.ListedRun) int64 {
	const overhead = 64
	n := int64(overhead)
	if e := lr.Exports; e != nil {
		for _, u := range e.URLs {
			n += int64(len(u)) + overhead
		}
		n += 8 * int64(len(e.LiveSteps))
	}
	if c := lr.Contents; c != nil {
		for _, f := range c.Files {
			n += int64(len(f.Name)+len(f.URL)+len(f.DirectURL)+len(f.Mimetype)+len(f.UpdatedAt)+len(f.MD5)) + 4*overhead
		}
		for _, as := range [][]wandbapi.Artifact{c.Logged, c.Used} {
			for _, a := range as {
				n += int64(len(a.ID)+len(a.Sequence.Name)+len(a.ArtifactType.Name)+len(a.Digest)) + 16*overhead
				if a.Metadata != nil {
					n += int64(len(*a.Metadata))
				}
				if a.Description != nil {
					n += int64(len(*a.Description))
				}
				if a.CurrentManifest != nil {
					n += int64(len(a.CurrentManifest.File.DirectURL))
				}
			}
		}
	}
	return n
}

// ReleaseRun forgets what the listing noted of run (sources.RunReleaser),
// once the job asks nothing more of it: its fingerprint, estimates, last
// step, tail, whether it has system metrics and console lines, its files'
// bytes and count, what its page carried in export form (within
// ListedExtrasBudget) and its listing page. Kept to the end of the job,
// they grew with the runs listed (docs/WANDB-CLOUD.md gap 6).
func (s *Source) ReleaseRun(run schema.Ref) {
	id := run.ID
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.fingerprints, id)
	delete(s.estimates, id)
	delete(s.lastSteps, id)
	delete(s.noSystem, id)
	delete(s.noLogs, id)
	delete(s.tails, id)
	delete(s.fileBytes, id)
	delete(s.fileCount, id)
	delete(s.pages, id)
	if x := s.extras[id]; x != nil {
		x.exports, x.contents = nil, nil
		s.dropIfEmpty(id, x)
	}
	if p, ok := s.ahead.index[id]; ok && p >= s.ahead.base {
		delete(s.ahead.index, id)
	}
	s.ahead.release(id)
	s.ahead.forget()
}

// listedState counts the runs whose listing notes the source holds (for
// tests): the largest of its notes' maps, and the listed runs the
// downloads ahead keep in their order.
func (s *Source) listedState() (runs, order int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range []int{len(s.fingerprints), len(s.estimates), len(s.lastSteps), len(s.noSystem), len(s.noLogs),
		len(s.tails), len(s.fileBytes), len(s.fileCount), len(s.pages), len(s.extras)} {
		runs = max(runs, n)
	}
	return runs, len(s.ahead.order) + len(s.ahead.index)
}
