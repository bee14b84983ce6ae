package wandbapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/runferry/runferry/internal/fault"
)

// Exports are a run's parquet history exports as parquetHistory answers
// them: signed URLs (their order not meaningful) and the steps of the live
// tail not exported yet.
type Exports struct {
	URLs      []string
	LiveSteps []int64
}

// ListedRun is a run as the export form of its listing page (ExportPage)
// gives it: the run, and what else the page carried.
type ListedRun struct {
	Run
	// Exports are the run's parquet history exports; nil when the
	// page did not carry them (no parquetHistory given).
	Exports *Exports
	// Contents are the run's files and artifact versions; nil when the
	// listing did not carry them whole (more than their first page:
	// ask Contents).
	Contents *RunContents
}

// exportListingQuery is a page of the runs listing with, for every run, what an
// export of it needs next: its parquetHistory (as ParquetHistory asks for
// it) and the first pages of its files, outputArtifacts and inputArtifacts
// (as Contents asks for them). Exporting a page of RunsPageSize runs then
// costs 2 requests (the plain page, then this one: see ExportPage) where
// it cost 1 + 2 x RunsPageSize.
//
// W&B's API accepts these fields inside a runs connection: a run node of
// project.runs is the same Run type as project.run(name:), and GraphQL
// lets any selection of a type be made wherever the type is reached. The
// wandb SDK itself asks per-run history inside a runs listing
// (wandb/apis/public/sweeps.py in wandb 0.31.0: sweep { runs { edges {
// node { … sampledHistory(specs: $specs) } } } }); parquetHistory is
// Run's field in wandb-core (core/api/graphql/query_parquethistory.graphql),
// files(first:) Run's in wandb/apis/public/files.py, outputArtifacts and
// inputArtifacts Run's in wandb/sdk/artifacts/_generated/operations.py
// (see ../shared/reference/wandb-formats.md, section 5). How much such a
// page costs the server is not published: a server that answers it with a
// GraphQL error (an older W&B Server without parquetHistory, a query
// judged too costly) is not asked it again (see ExportPage).
const exportListingQuery = `query RunsForExport($entity: String!, $project: String!, $cursor: String, $perPage: Int!, $filters: JSONString, $liveKeys: [String!]!, $filesPerPage: Int!, $artifactsPerPage: Int) {
  project(name: $project, entityName: $entity) {
    runs(filters: $filters, after: $cursor, first: $perPage, order: "+created_at") {
      pageInfo { endCursor hasNextPage }
      edges { node { ` + RunFields + `
        parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData }
        files(first: $filesPerPage) {
          pageInfo { endCursor hasNextPage }
          edges { node { name url(upload: false) directUrl sizeBytes mimetype updatedAt md5 } }
        }
        outputArtifacts(first: $artifactsPerPage) {
          pageInfo { endCursor hasNextPage }
          edges { node { ` + artifactNode + ` } }
        }
        inputArtifacts(first: $artifactsPerPage) {
          pageInfo { endCursor hasNextPage }
          edges { node { ` + artifactNode + ` } }
        }
      } }
    }
  }
}`

// exportNode is one run of the export listing as it is decoded.
type exportNode struct {
	Run
	ParquetHistory *parquetHistory       `json:"parquetHistory"`
	Files          *connection[RunFile]  `json:"files"`
	Output         *connection[Artifact] `json:"outputArtifacts"`
	Input          *connection[Artifact] `json:"inputArtifacts"`
}

// parquetHistory is the parquetHistory field as the API answers it.
type parquetHistory struct {
	ParquetURLs []string          `json:"parquetUrls"`
	LiveData    []json.RawMessage `json:"liveData"`
}

// exports reads the URLs and the live tail's steps; a live row without a
// _step is a permanent error naming the run.
func (ph *parquetHistory) exports(entity, project, id string) (*Exports, error) {
	e := &Exports{URLs: ph.ParquetURLs}
	for i, raw := range ph.LiveData {
		var row struct {
			Step *float64 `json:"_step"`
		}
		if err := json.Unmarshal(raw, &row); err != nil || row.Step == nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s: parquetHistory liveData row %d has no _step", entity, project, id, i))
		}
		e.LiveSteps = append(e.LiveSteps, int64(*row.Step))
	}
	return e, nil
}

// listed turns a decoded node into a ListedRun.
func (n *exportNode) listed(entity, project string) (ListedRun, error) {
	lr := ListedRun{Run: n.Run}
	if n.ParquetHistory != nil {
		e, err := n.ParquetHistory.exports(entity, project, n.Name)
		if err != nil {
			return ListedRun{}, err
		}
		lr.Exports = e
	}
	whole := func(first pageInfo) bool { return !first.HasNextPage || first.EndCursor == nil }
	if n.Files != nil && whole(n.Files.PageInfo) &&
		(n.Output == nil || whole(n.Output.PageInfo)) && (n.Input == nil || whole(n.Input.PageInfo)) {
		rc := &RunContents{Files: n.Files.nodes()}
		if n.Output != nil {
			rc.Logged = n.Output.nodes()
		}
		if n.Input != nil {
			rc.Used = n.Input.nodes()
		}
		lr.Contents = rc
	}
	return lr, nil
}

// RunPage is one page of a runs listing (RunPages): what asks for the
// same page again (its cursor and filters) and the names of the runs it
// listed.
type RunPage struct {
	Entity, Project string
	// Names are the names of the page's runs, in listing order.
	Names  []string
	fjson  string
	cursor *string
}

// PagedRun is a run of a listing and the page that listed it; the runs of
// a page share one *RunPage.
type PagedRun struct {
	Run
	Page *RunPage
}

// RunPages yields the runs of entity/project that match filters (see
// RunsWhere), oldest first, as the plain listing gives them, each with
// its page, so that ExportPage can ask for the page again in export form
// when one of its runs is read.
func (c *Client) RunPages(ctx context.Context, entity, project string, filters map[string]any) iter.Seq2[PagedRun, error] {
	return func(yield func(PagedRun, error) bool) {
		for pg, err := range listingPages[Run](ctx, c, entity, project, filters, runsQuery, nil) {
			if err != nil {
				yield(PagedRun{}, err)
				return
			}
			for _, r := range pg.nodes {
				pg.page.Names = append(pg.page.Names, r.Name)
			}
			for _, r := range pg.nodes {
				if !yield(PagedRun{Run: r, Page: pg.page}, nil) {
					return
				}
			}
		}
	}
}

// ExportPage asks for page p of a listing again, with the same cursor
// and filters, in export form: every run it gives now comes with its
// parquet history exports and its files and artifact versions when the
// page could carry them (ListedRun), so that exporting the runs of a page
// costs one request more than listing it, not 2 per run. The runs are
// those the server gives for the page now (runs created or deleted since
// the listing may shift it); a run of p.Names missing from them is not
// an error (its caller asks for it alone).
//
// A server that answers the export form with a GraphQL error (an older
// W&B Server without parquetHistory, a query judged too costly) is not
// asked it again by this client: ExportPage then returns no runs and no
// error, at once. A run whose parquetHistory answer cannot be read is
// left out (asked alone, its error names it).
func (c *Client) ExportPage(ctx context.Context, p *RunPage) ([]ListedRun, error) {
	if c.plainListing.Load() {
		return nil, nil
	}
	vars := map[string]any{"liveKeys": []string{"_step"}, "filesPerPage": FilesPageSize, "artifactsPerPage": ArtifactsPageSize}
	nodes, _, err := fetchPage[exportNode](ctx, c, p, exportListingQuery, vars)
	if err != nil {
		var missing *projectMissing
		if fault.KindOf(err) == fault.KindPermanent && ctx.Err() == nil && !errors.As(err, &missing) {
			c.plainListing.Store(true)
			return nil, nil
		}
		return nil, err
	}
	out := make([]ListedRun, 0, len(nodes))
	for _, n := range nodes {
		if lr, err := n.listed(p.Entity, p.Project); err == nil {
			out = append(out, lr)
		}
	}
	return out, nil
}

// projectMissing is the error of a listing whose project the server does
// not know.
type projectMissing struct{ entity, project, host string }

func (e *projectMissing) Error() string {
	return fmt.Sprintf("wandb: project %s/%s not found on %s", e.entity, e.project, e.host)
}

// listingPage is one page of listingPages: its nodes and what asks for it.
type listingPage[N any] struct {
	nodes []N
	page  *RunPage
}

// runListing yields the nodes of the runs of entity/project that match
// filters (see RunsWhere), oldest first, page by page: query pages
// project.runs with the variables entity, project, cursor, perPage and
// filters, and extra.
func runListing[N any](ctx context.Context, c *Client, entity, project string, filters map[string]any, query string, extra map[string]any) iter.Seq2[N, error] {
	return func(yield func(N, error) bool) {
		var zero N
		for pg, err := range listingPages[N](ctx, c, entity, project, filters, query, extra) {
			if err != nil {
				yield(zero, err)
				return
			}
			for _, n := range pg.nodes {
				if !yield(n, nil) {
					return
				}
			}
		}
	}
}

// listingPages is runListing a page at a time.
func listingPages[N any](ctx context.Context, c *Client, entity, project string, filters map[string]any, query string, extra map[string]any) iter.Seq2[listingPage[N], error] {
	return func(yield func(listingPage[N], error) bool) {
		fjson := "{}"
		if len(filters) > 0 {
			b, err := json.Marshal(filters)
			if err != nil {
				yield(listingPage[N]{}, fault.Permanent(fmt.Errorf("wandb: run filter: %v", err)))
				return
			}
			fjson = string(b)
		}
		var cursor *string
		for {
			p := &RunPage{Entity: entity, Project: project, fjson: fjson, cursor: cursor}
			nodes, next, err := fetchPage[N](ctx, c, p, query, extra)
			if err != nil {
				yield(listingPage[N]{}, err)
				return
			}
			if !yield(listingPage[N]{nodes: nodes, page: p}, nil) || next == nil {
				return
			}
			cursor = next
		}
	}
}

// fetchPage asks for page p with query and the variables entity, project,
// cursor, perPage and filters, and extra; next is the cursor of the page
// after it, nil for the last.
func fetchPage[N any](ctx context.Context, c *Client, p *RunPage, query string, extra map[string]any) (nodes []N, next *string, err error) {
	var out struct {
		Project *struct {
			Runs connection[N] `json:"runs"`
		} `json:"project"`
	}
	vars := map[string]any{"entity": p.Entity, "project": p.Project, "cursor": p.cursor, "perPage": RunsPageSize, "filters": p.fjson}
	for k, v := range extra {
		vars[k] = v
	}
	if err := c.Query(ctx, query, vars, &out); err != nil {
		return nil, nil, err
	}
	if out.Project == nil {
		return nil, nil, fault.Permanent(&projectMissing{p.Entity, p.Project, c.host})
	}
	return out.Project.Runs.nodes(), out.Project.Runs.next(), nil
}

// ExportListing yields the runs of entity/project that match filters (see
// RunsWhere), oldest first, listed in export form only: one request a page
// of RunsPageSize runs, each run with what ExportPage would give it
// (ListedRun: its exports, and its files and artifact versions when the
// page could carry them), for a caller that reads every run it lists (a
// first copy), where RunPages then ExportPage would cost 2 requests a
// page. A run whose parquetHistory answer cannot be read is yielded
// without exports (its caller asks for them alone; that error names it).
//
// A server that answers the export form with a GraphQL error (see
// ExportPage) is asked that page again, and every page after it, with the
// plain listing: its runs are yielded without extras, none lost.
func (c *Client) ExportListing(ctx context.Context, entity, project string, filters map[string]any) iter.Seq2[ListedRun, error] {
	return func(yield func(ListedRun, error) bool) {
		fjson := "{}"
		if len(filters) > 0 {
			b, err := json.Marshal(filters)
			if err != nil {
				yield(ListedRun{}, fault.Permanent(fmt.Errorf("wandb: run filter: %v", err)))
				return
			}
			fjson = string(b)
		}
		vars := map[string]any{"liveKeys": []string{"_step"}, "filesPerPage": FilesPageSize, "artifactsPerPage": ArtifactsPageSize}
		var cursor *string
		for {
			p := &RunPage{Entity: entity, Project: project, fjson: fjson, cursor: cursor}
			var out []ListedRun
			var next *string
			var err error
			plain := c.plainListing.Load()
			if !plain {
				var nodes []exportNode
				nodes, next, err = fetchPage[exportNode](ctx, c, p, exportListingQuery, vars)
				var missing *projectMissing
				if err != nil && fault.KindOf(err) == fault.KindPermanent && ctx.Err() == nil && !errors.As(err, &missing) {
					c.plainListing.Store(true)
					plain, err = true, nil // asked again below, plainly
				} else {
					for _, n := range nodes {
						lr, lerr := n.listed(entity, project)
						if lerr != nil {
							lr = ListedRun{Run: n.Run}
						}
						out = append(out, lr)
					}
				}
			}
			if err == nil && plain {
				var runs []Run
				runs, next, err = fetchPage[Run](ctx, c, p, runsQuery, nil)
				for _, r := range runs {
					out = append(out, ListedRun{Run: r})
				}
			}
			if err != nil {
				yield(ListedRun{}, err)
				return
			}
			for _, lr := range out {
				if !yield(lr, nil) {
					return
				}
			}
			if next == nil {
				return
			}
			cursor = next
		}
	}
}
