package wandbapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"

	"github.com/runferry/runferry/internal/fault"
)

// Artifact is one artifact version as the API lists it for a run
// (outputArtifacts: the versions it logged; inputArtifacts: those it used),
// with the signed URL of its manifest.
type Artifact struct {
	ID       string `json:"id"`
	Sequence struct {
		Name string `json:"name"`
	} `json:"artifactSequence"`
	VersionIndex *int `json:"versionIndex"`
	ArtifactType struct {
		Name string `json:"name"`
	} `json:"artifactType"`
	Description *string `json:"description"`
	Metadata    *string `json:"metadata"` // a JSONString
	Tags        []struct {
		Name string `json:"name"`
	} `json:"tags"`
	State  string `json:"state"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// FileCount is how many files the version stores (its manifest's
	// entries that are not references), as the server counts them; nil
	// when the server does not tell.
	FileCount *int64 `json:"fileCount"`
	Aliases   []struct {
		Alias              string `json:"alias"`
		ArtifactCollection *struct {
			Name string `json:"name"`
		} `json:"artifactCollection"`
	} `json:"aliases"`
	CurrentManifest *struct {
		File struct {
			DirectURL string `json:"directUrl"`
		} `json:"file"`
	} `json:"currentManifest"`
}

// Version is "v<versionIndex>", or "" when the server gave none.
func (a Artifact) Version() string {
	if a.VersionIndex == nil {
		return ""
	}
	return "v" + strconv.Itoa(*a.VersionIndex)
}

// OwnAliases are the version's aliases in its own collection (not those
// of collections it is linked into).
func (a Artifact) OwnAliases() []string {
	var out []string
	for _, al := range a.Aliases {
		if al.ArtifactCollection == nil || al.ArtifactCollection.Name == a.Sequence.Name {
			out = append(out, al.Alias)
		}
	}
	return out
}

// ArtifactsPageSize is how many artifact versions one request asks for.
const ArtifactsPageSize = 50

// artifactNode is the selection runferry asks for every artifact version.
const artifactNode = `id versionIndex description metadata state digest size fileCount
          artifactSequence { name }
          artifactType { name }
          tags { name }
          aliases { alias artifactCollection { name } }
          currentManifest { file { directUrl } }`

const runArtifactsQuery = `query RunArtifacts($entity: String!, $project: String!, $run: String!, $cursor: String, $perPage: Int) {
  project(entityName: $entity, name: $project) {
    run(name: $run) {
      artifacts: %s(after: $cursor, first: $perPage) {
        pageInfo { endCursor hasNextPage }
        edges { node { ` + artifactNode + ` } }
      }
    }
  }
}`

// RunArtifacts yields the artifact versions the run logged (used false:
// outputArtifacts) or used (inputArtifacts), in the server's order.
func (c *Client) RunArtifacts(ctx context.Context, entity, project, id string, used bool) iter.Seq2[Artifact, error] {
	return c.runArtifacts(ctx, entity, project, id, used, nil)
}

// runArtifacts yields the versions after cursor (nil: from the start).
func (c *Client) runArtifacts(ctx context.Context, entity, project, id string, used bool, cursor *string) iter.Seq2[Artifact, error] {
	field, what := "outputArtifacts", "logged artifacts"
	if used {
		field, what = "inputArtifacts", "used artifacts"
	}
	rc := runConnection{what: what, query: fmt.Sprintf(runArtifactsQuery, field), field: "artifacts", after: "cursor",
		vars: map[string]any{"entity": entity, "project": project, "run": id, "perPage": ArtifactsPageSize}}
	return flatten(runPages[Artifact](ctx, c, entity, project, id, rc, cursor))
}

// RunContents is a run's files and the artifact versions it logged and
// used, each in the server's order.
type RunContents struct {
	Files        []RunFile
	Logged, Used []Artifact
}

const runContentsQuery = `query RunContents($entity: String!, $project: String!, $run: String!, $perPage: Int!, $artifactsPerPage: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      files(first: $perPage) {
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
    }
  }
}`

// Contents lists the run's files and artifact versions: their first pages
// in one request (a run without artifacts costs no more than its files
// listing), the rest, if any, page by page.
func (c *Client) Contents(ctx context.Context, entity, project, id string) (RunContents, error) {
	var out struct {
		Project *struct {
			Run *struct {
				Files  *connection[RunFile]  `json:"files"`
				Output *connection[Artifact] `json:"outputArtifacts"`
				Input  *connection[Artifact] `json:"inputArtifacts"`
			} `json:"run"`
		} `json:"project"`
	}
	vars := map[string]any{"entity": entity, "project": project, "run": id, "perPage": FilesPageSize, "artifactsPerPage": ArtifactsPageSize}
	if err := c.Query(ctx, runContentsQuery, vars, &out); err != nil {
		return RunContents{}, err
	}
	if out.Project == nil || out.Project.Run == nil {
		return RunContents{}, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s not found on %s", entity, project, id, c.host))
	}
	r := out.Project.Run
	var rc RunContents
	var err error
	if rc.Files, err = rest(r.Files, func(cursor *string) iter.Seq2[RunFile, error] {
		return c.runFiles(ctx, entity, project, id, cursor)
	}); err != nil {
		return RunContents{}, err
	}
	if rc.Logged, err = rest(r.Output, func(cursor *string) iter.Seq2[Artifact, error] {
		return c.runArtifacts(ctx, entity, project, id, false, cursor)
	}); err != nil {
		return RunContents{}, err
	}
	if rc.Used, err = rest(r.Input, func(cursor *string) iter.Seq2[Artifact, error] {
		return c.runArtifacts(ctx, entity, project, id, true, cursor)
	}); err != nil {
		return RunContents{}, err
	}
	return rc, nil
}

// rest returns the nodes of a connection's first page (nil: none) and of
// the pages after it, which more asks for from the first page's cursor.
func rest[T any](first *connection[T], more func(cursor *string) iter.Seq2[T, error]) ([]T, error) {
	if first == nil {
		return nil, nil
	}
	out := first.nodes()
	if next := first.next(); next != nil {
		for x, err := range more(next) {
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
	}
	return out, nil
}

// ArtifactFile is one stored file of an artifact version.
type ArtifactFile struct {
	Name      string `json:"name"`
	DirectURL string `json:"directUrl"`
}

const artifactFilesQuery = `query ArtifactFiles($entity: String!, $project: String!, $collection: String!, $alias: String!, $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) {
    artifactCollection(name: $collection) {
      artifactMembership(aliasName: $alias) {
        files(after: $cursor, first: $perPage) {
          pageInfo { endCursor hasNextPage }
          edges { node { name directUrl } }
        }
      }
    }
  }
}`

// ArtifactFilesPageSize is how many artifact files one request asks for.
const ArtifactFilesPageSize = 1000

// ArtifactFiles yields the signed download URLs of the files of the
// version alias ("v3") of collection, as the SDK's download asks for them.
func (c *Client) ArtifactFiles(ctx context.Context, entity, project, collection, alias string) iter.Seq2[ArtifactFile, error] {
	return func(yield func(ArtifactFile, error) bool) {
		var cursor *string
		for {
			var out struct {
				Project *struct {
					Collection *struct {
						Membership *struct {
							Files *struct {
								PageInfo pageInfo `json:"pageInfo"`
								Edges    []struct {
									Node *ArtifactFile `json:"node"`
								} `json:"edges"`
							} `json:"files"`
						} `json:"artifactMembership"`
					} `json:"artifactCollection"`
				} `json:"project"`
			}
			vars := map[string]any{"entity": entity, "project": project, "collection": collection, "alias": alias, "cursor": cursor, "perPage": ArtifactFilesPageSize}
			if err := c.Query(ctx, artifactFilesQuery, vars, &out); err != nil {
				yield(ArtifactFile{}, err)
				return
			}
			if out.Project == nil || out.Project.Collection == nil || out.Project.Collection.Membership == nil || out.Project.Collection.Membership.Files == nil {
				yield(ArtifactFile{}, fault.Permanent(fmt.Errorf("wandb: artifact %s/%s/%s:%s not found on %s", entity, project, collection, alias, c.host)))
				return
			}
			fs := out.Project.Collection.Membership.Files
			for _, e := range fs.Edges {
				if e.Node == nil {
					continue
				}
				if !yield(*e.Node, nil) {
					return
				}
			}
			if !fs.PageInfo.HasNextPage || fs.PageInfo.EndCursor == nil {
				return
			}
			cursor = fs.PageInfo.EndCursor
		}
	}
}

// Manifest is a W&B artifact manifest (version 1), as stored beside the
// version and read by the SDK's ArtifactManifestV1.
type Manifest struct {
	Version       int                      `json:"version"`
	StoragePolicy string                   `json:"storagePolicy"`
	Contents      map[string]ManifestEntry `json:"contents"`
}

// ManifestEntry is one entry of a manifest: digest is base64 MD5 for
// stored files; ref names an external reference.
type ManifestEntry struct {
	Digest          string `json:"digest"`
	Size            int64  `json:"size"`
	Ref             string `json:"ref,omitempty"`
	BirthArtifactID string `json:"birthArtifactID,omitempty"`
}

// MaxManifestBytes bounds a manifest download.
const MaxManifestBytes = 512 << 20

// ParseManifest reads a manifest's JSON; a version other than 1 or an
// entry without a digest is an error.
func ParseManifest(r io.Reader) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(io.LimitReader(r, MaxManifestBytes))
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", err)
	}
	if m.Version != 1 {
		return Manifest{}, fmt.Errorf("manifest: version %d, want 1", m.Version)
	}
	for p, e := range m.Contents {
		if e.Digest == "" || e.Size < 0 {
			return Manifest{}, fmt.Errorf("manifest: entry %q: no digest or a negative size", p)
		}
	}
	return m, nil
}

// FetchManifest downloads and parses the manifest at its signed URL.
func (c *Client) FetchManifest(ctx context.Context, url string) (Manifest, error) {
	rc, err := c.Open(ctx, url)
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	m, err := ParseManifest(rc)
	if err != nil {
		if ctx.Err() != nil {
			return Manifest{}, ctx.Err()
		}
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Manifest{}, fault.Retryable(fmt.Errorf("wandb: %w", err), 0)
		}
		return Manifest{}, fault.Permanent(fmt.Errorf("wandb: %w", err))
	}
	return m, nil
}
