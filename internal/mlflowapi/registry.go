package mlflowapi

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// RegisteredModel is a model of MLflow's model registry.
type RegisteredModel struct {
	Name                 string       `json:"name"`
	CreationTimestamp    int64        `json:"creation_timestamp,omitempty"`
	LastUpdatedTimestamp int64        `json:"last_updated_timestamp,omitempty"`
	Description          string       `json:"description,omitempty"`
	Tags                 []Tag        `json:"tags,omitempty"`
	Aliases              []ModelAlias `json:"aliases,omitempty"`
}

// ModelAlias is an alias of a registered model; Version is a decimal string.
type ModelAlias struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// ModelVersion is a version of a registered model. Version is a decimal
// string assigned by the server.
type ModelVersion struct {
	Name              string `json:"name"`
	Version           string `json:"version"`
	CreationTimestamp int64  `json:"creation_timestamp,omitempty"`
	// LastUpdatedTimestamp is the server's time of the last change.
	LastUpdatedTimestamp int64  `json:"last_updated_timestamp,omitempty"`
	CurrentStage         string `json:"current_stage,omitempty"`
	Description          string `json:"description,omitempty"`
	Source               string `json:"source,omitempty"`
	RunID                string `json:"run_id,omitempty"`
	Status               string `json:"status,omitempty"`
	Tags                 []Tag  `json:"tags,omitempty"`
	ModelID              string `json:"model_id,omitempty"`
}

// Tag returns the value of the version's tag key.
func (v *ModelVersion) Tag(key string) (string, bool) {
	for _, t := range v.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// registryPageSize is the page size of registry searches (the server's
// maximum for registered models is 1000, for versions 200,000).
const registryPageSize = 1000

// SearchRegisteredModels yields every registered model ordered by name.
// Aliases are not in search answers: GetRegisteredModel has them.
func (c *Client) SearchRegisteredModels(ctx context.Context) iter.Seq2[RegisteredModel, error] {
	return func(yield func(RegisteredModel, error) bool) {
		q := url.Values{"max_results": {strconv.Itoa(registryPageSize)}, "order_by": {"name ASC"}}
		seen := map[string]bool{}
		for {
			var out struct {
				Models []RegisteredModel `json:"registered_models"`
				Next   string            `json:"next_page_token"`
			}
			if err := c.get(ctx, api+"registered-models/search", q, &out); err != nil {
				yield(RegisteredModel{}, err)
				return
			}
			for _, m := range out.Models {
				if seen[m.Name] {
					continue
				}
				seen[m.Name] = true
				if !yield(m, nil) {
					return
				}
			}
			if out.Next == "" || len(out.Models) == 0 {
				return
			}
			q.Set("page_token", out.Next)
		}
	}
}

// GetRegisteredModel returns the model named name with its tags and
// aliases; the error satisfies IsNotFound when there is none.
func (c *Client) GetRegisteredModel(ctx context.Context, name string) (RegisteredModel, error) {
	var out struct {
		Model RegisteredModel `json:"registered_model"`
	}
	err := c.get(ctx, api+"registered-models/get", url.Values{"name": {name}}, &out)
	return out.Model, err
}

// CreateRegisteredModel creates a model; a name taken is an error
// satisfying IsCode(err, CodeAlreadyExists), so a repeat cannot duplicate.
func (c *Client) CreateRegisteredModel(ctx context.Context, name, description string, tags []Tag) error {
	return c.post(ctx, idempotent, api+"registered-models/create",
		map[string]any{"name": name, "description": description, "tags": tags}, nil)
}

// UpdateRegisteredModel sets a model's description.
func (c *Client) UpdateRegisteredModel(ctx context.Context, name, description string) error {
	return c.call(ctx, idempotent, http.MethodPatch, api+"registered-models/update", nil,
		map[string]string{"name": name, "description": description}, nil)
}

// SetRegisteredModelTag sets (overwrites) one model tag.
func (c *Client) SetRegisteredModelTag(ctx context.Context, name, key, value string) error {
	return c.post(ctx, idempotent, api+"registered-models/set-tag",
		map[string]string{"name": name, "key": key, "value": value}, nil)
}

// SetRegisteredModelAlias points alias at version (moving it if it named
// another one).
func (c *Client) SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error {
	return c.post(ctx, idempotent, api+"registered-models/alias",
		map[string]string{"name": name, "alias": alias, "version": version}, nil)
}

// SearchModelVersions yields every version of the model named name, in the
// server's order.
func (c *Client) SearchModelVersions(ctx context.Context, name string) iter.Seq2[ModelVersion, error] {
	return func(yield func(ModelVersion, error) bool) {
		q := url.Values{"filter": {"name='" + escapeFilter(name) + "'"}, "max_results": {strconv.Itoa(registryPageSize)}}
		seen := map[string]bool{}
		for {
			var out struct {
				Versions []ModelVersion `json:"model_versions"`
				Next     string         `json:"next_page_token"`
			}
			if err := c.get(ctx, api+"model-versions/search", q, &out); err != nil {
				yield(ModelVersion{}, err)
				return
			}
			for _, v := range out.Versions {
				if seen[v.Version] {
					continue
				}
				seen[v.Version] = true
				if !yield(v, nil) {
					return
				}
			}
			if out.Next == "" || len(out.Versions) == 0 {
				return
			}
			q.Set("page_token", out.Next)
		}
	}
}

// escapeFilter quotes s for a single-quoted string of a search filter.
func escapeFilter(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// CreateModelVersion creates the next version of model v.Name from
// v.Source, v.RunID, v.ModelID (a logged model), v.Description and v.Tags,
// and returns it. The server
// numbers it, so it is never resent once the server may have applied it:
// after an ambiguous failure the caller finds it by its tags.
func (c *Client) CreateModelVersion(ctx context.Context, v ModelVersion) (ModelVersion, error) {
	var out struct {
		Version ModelVersion `json:"model_version"`
	}
	in := map[string]any{"name": v.Name, "source": v.Source, "description": v.Description, "tags": v.Tags}
	if v.RunID != "" {
		in["run_id"] = v.RunID
	}
	if v.ModelID != "" {
		in["model_id"] = v.ModelID
	}
	err := c.post(ctx, applyOnce, api+"model-versions/create", in, &out)
	return out.Version, err
}

// UpdateModelVersion sets a version's description.
func (c *Client) UpdateModelVersion(ctx context.Context, name, version, description string) error {
	return c.call(ctx, idempotent, http.MethodPatch, api+"model-versions/update", nil,
		map[string]string{"name": name, "version": version, "description": description}, nil)
}

// SetModelVersionTag sets (overwrites) one version tag.
func (c *Client) SetModelVersionTag(ctx context.Context, name, version, key, value string) error {
	return c.post(ctx, idempotent, api+"model-versions/set-tag",
		map[string]string{"name": name, "version": version, "key": key, "value": value}, nil)
}

// TransitionModelVersionStage moves a version to stage, leaving the other
// versions where they are.
func (c *Client) TransitionModelVersionStage(ctx context.Context, name, version, stage string) error {
	return c.post(ctx, idempotent, api+"model-versions/transition-stage",
		map[string]any{"name": name, "version": version, "stage": stage, "archive_existing_versions": false}, nil)
}
