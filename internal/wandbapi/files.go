package wandbapi

import (
	"context"
	"iter"
)

// RunFile is a run file as the API lists it.
type RunFile struct {
	Name      string `json:"name"`
	URL       string `json:"url"`       // on the API host, fetched with the key
	DirectURL string `json:"directUrl"` // signed storage URL, fetched without
	SizeBytes int64  `json:"sizeBytes"`
	Mimetype  string `json:"mimetype"`
	UpdatedAt string `json:"updatedAt"`
	MD5       string `json:"md5"` // base64
}

// FilesPageSize is how many files one request asks for.
const FilesPageSize = 100

const runFilesQuery = `query RunFiles($entity: String!, $project: String!, $run: String!, $cursor: String, $perPage: Int!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      files(after: $cursor, first: $perPage) {
        pageInfo { endCursor hasNextPage }
        edges { node { name url(upload: false) directUrl sizeBytes mimetype updatedAt md5 } }
      }
    }
  }
}`

// RunFiles yields the run's files, in the server's order.
func (c *Client) RunFiles(ctx context.Context, entity, project, id string) iter.Seq2[RunFile, error] {
	return c.runFiles(ctx, entity, project, id, nil)
}

// runFiles yields the run's files after cursor (nil: from the start).
func (c *Client) runFiles(ctx context.Context, entity, project, id string, cursor *string) iter.Seq2[RunFile, error] {
	rc := runConnection{what: "files", query: runFilesQuery, field: "files", after: "cursor",
		vars: map[string]any{"entity": entity, "project": project, "run": id, "perPage": FilesPageSize}}
	return flatten(runPages[RunFile](ctx, c, entity, project, id, rc, cursor))
}
