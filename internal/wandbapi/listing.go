package wandbapi

import (
	"context"
	"encoding/json"
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

// ListedRun is a run as the export listing (RunsForExport) gives it: the
// run, and what else its listing page carried.
type ListedRun struct {
	Run
	// Exports are the run's parquet history exports; nil when the
	// listing did not carry them (the server refused the export
	// listing, or gave no parquetHistory).
	Exports *Exports
	// Contents are the run's files and artifact versions; nil when the
	// listing did not carry them whole (more than their first page:
	// ask Contents).
	Contents *RunContents
}

// exportListingQuery is the runs listing with, for every run, what an
// export of it needs next: its parquetHistory (as ParquetHistory asks for
// it) and the first pages of its files, outputArtifacts and inputArtifacts
// (as Contents asks for them). A page of RunsPageSize runs then costs one
// request where it cost 1 + 2 x RunsPageSize.
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
// judged too costly) is asked the plain listing instead (see
// RunsForExport).
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

// RunsForExport yields the runs of entity/project that match filters
// (see RunsWhere), oldest first, each with its parquet history exports
// and its files and artifact versions when the listing page could carry
// them (ListedRun), so that exporting a run whose first pages held
// everything asks no more of the API than its listing page did.
//
// A server that answers the first page of this listing with a GraphQL
// error is asked the plain listing (RunsWhere) instead; when that one
// answers, for every later call of the client too. The runs then come
// without Exports or Contents.
func (c *Client) RunsForExport(ctx context.Context, entity, project string, filters map[string]any) iter.Seq2[ListedRun, error] {
	return func(yield func(ListedRun, error) bool) {
		// plain yields the plain listing; refused (the export listing
		// was) remembers it for the client once the plain listing
		// answers where the export listing did not (a project that
		// does not exist fails both, and changes nothing).
		plain := func(refused bool) {
			for r, err := range c.RunsWhere(ctx, entity, project, filters) {
				if refused && err == nil {
					c.plainListing.Store(true)
					refused = false
				}
				if !yield(ListedRun{Run: r}, err) || err != nil {
					return
				}
			}
			if refused {
				c.plainListing.Store(true)
			}
		}
		if c.plainListing.Load() {
			plain(false)
			return
		}
		first := true
		vars := map[string]any{"liveKeys": []string{"_step"}, "filesPerPage": FilesPageSize, "artifactsPerPage": ArtifactsPageSize}
		for n, err := range runListing[exportNode](ctx, c, entity, project, filters, exportListingQuery, vars) {
			if err != nil {
				if first && fault.KindOf(err) == fault.KindPermanent {
					plain(true)
					return
				}
				yield(ListedRun{}, err)
				return
			}
			first = false
			lr, err := n.listed(entity, project)
			if !yield(lr, err) || err != nil {
				return
			}
		}
	}
}

// runListing yields the nodes of the runs of entity/project that match
// filters (see RunsWhere), oldest first, page by page: query pages
// project.runs with the variables entity, project, cursor, perPage and
// filters, and extra.
func runListing[N any](ctx context.Context, c *Client, entity, project string, filters map[string]any, query string, extra map[string]any) iter.Seq2[N, error] {
	return func(yield func(N, error) bool) {
		var zero N
		fjson := "{}"
		if len(filters) > 0 {
			b, err := json.Marshal(filters)
			if err != nil {
				yield(zero, fault.Permanent(fmt.Errorf("wandb: run filter: %v", err)))
				return
			}
			fjson = string(b)
		}
		var cursor *string
		for {
			var out struct {
				Project *struct {
					Runs connection[N] `json:"runs"`
				} `json:"project"`
			}
			vars := map[string]any{"entity": entity, "project": project, "cursor": cursor, "perPage": RunsPageSize, "filters": fjson}
			for k, v := range extra {
				vars[k] = v
			}
			if err := c.Query(ctx, query, vars, &out); err != nil {
				yield(zero, err)
				return
			}
			if out.Project == nil {
				yield(zero, fault.Permanent(fmt.Errorf("wandb: project %s/%s not found on %s", entity, project, c.host)))
				return
			}
			for _, n := range out.Project.Runs.nodes() {
				if !yield(n, nil) {
					return
				}
			}
			next := out.Project.Runs.next()
			if next == nil {
				return
			}
			cursor = next
		}
	}
}
