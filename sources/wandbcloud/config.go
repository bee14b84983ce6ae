package wandbcloud

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/location"
)

// System is the Ref.System of everything this source yields: the same as
// the wandb: folder source's, so that a run read from its folder and from
// the cloud is recognised as the same run.
const System = "wandb"

// TagPrefix starts the keys of the tags holding W&B facts without a field
// of their own in schema.Run (the wandb: folder source's prefix).
const TagPrefix = "wandb."

// Config is the source's configuration, parsed from a location.
type Config struct {
	// BaseURL is the API's URL (https://api.wandb.ai, or a W&B Server).
	BaseURL string
	// Entity is the W&B entity (user or team) to read.
	Entity string
	// Project, when set, is the only project read.
	Project string
	// APIKey is the key; empty means WANDB_API_KEY or ~/.netrc.
	APIKey string
	// PagedHistory reads history only with the paged history query,
	// never from the parquet exports.
	PagedHistory bool
	// TempDir holds downloads while they are read (os.TempDir when
	// empty); history exports of up to 256 KiB are held in memory.
	TempDir string
	// Code also reads the run files of captured code (code/...).
	Code bool
	// RetryWait, when set, is the client's shortest wait between retries
	// (the longest is 20 times it); tests shorten it.
	RetryWait time.Duration
}

var options = []location.Option{
	{Name: "api-key", EnvVar: "WANDB_API_KEY", Secret: true,
		Help: "W&B API key (also read from ~/.netrc, machine = the location's host)."},
	{Name: "code", Help: "true: also copy the runs' captured code (run files under code/); default false."},
}

// Description documents the wandb+https: location.
func Description() location.Description {
	return location.Description{
		Scheme:  "wandb+https",
		Aliases: []string{"wandb+http"},
		Kind:    location.URLKind,
		Syntax:  "wandb+https://HOST/ENTITY[/PROJECT]",
		Summary: "W&B cloud or W&B Server (GraphQL API)",
		Help: `Reads an entity's projects (or the one given) through W&B's public GraphQL API
at https://HOST/graphql (api.wandb.ai for W&B's cloud, your host for W&B Server
and Dedicated Cloud). Runs come out in the same shape, with the same origins
(ENTITY/PROJECT/RUN_ID), as from their run folders with wandb:PATH, so a run
copied from both is one run. History is read in full, unsampled: from W&B's
parquet history exports and their live tail where the run has them, else with
the paged history scan up to the run's last step. --run, --since and --until are sent
to the server as the runs query's filters, so only the selected runs are
listed; ls of an entity lists its projects with run counts; --dry-run
estimates points from the listing without reading history. The server's rate
limits are honoured (429 Retry-After, RateLimit-Remaining/Reset; waits are
logged with their reason) and --rate N caps the requests a second. The API
key comes from WANDB_API_KEY or ~/.netrc and is never printed. Run files (console log, media, config and
summary files, user files; captured code only with ?code=true) are downloaded
from their signed URLs, size and MD5 checked. Not read yet: system metrics,
console output as lines, W&B Artifacts.`,
		Options: options,
		Example: "runferry copy wandb+https://api.wandb.ai/acme/vision mlflow+http://127.0.0.1:5000",
	}
}

// ParseConfig reads a Config from a location.
func ParseConfig(loc location.Location) (Config, error) {
	if loc.URL == nil {
		return Config{}, fmt.Errorf("wandb+https: %s is not a URL", loc)
	}
	if err := location.CheckSecrets(loc, Description()); err != nil {
		return Config{}, err
	}
	for name := range loc.URL.Query() {
		if !slices.ContainsFunc(options, func(o location.Option) bool { return o.Name == name }) {
			return Config{}, fmt.Errorf("wandb+https: unknown option %q", name)
		}
	}
	scheme := "https"
	if loc.Scheme == "wandb+http" {
		scheme = "http"
	}
	parts := strings.FieldsFunc(loc.URL.Path, func(r rune) bool { return r == '/' })
	if len(parts) == 0 || len(parts) > 2 {
		return Config{}, fmt.Errorf("wandb+https: want %s, got path %q", Description().Syntax, loc.URL.Path)
	}
	c := Config{BaseURL: scheme + "://" + loc.URL.Host, Entity: parts[0]}
	switch v := loc.URL.Query().Get("code"); v {
	case "", "false":
	case "true":
		c.Code = true
	default:
		return Config{}, fmt.Errorf("wandb+https: code=%q: want true or false", v)
	}
	if len(parts) == 2 {
		c.Project = parts[1]
	}
	return c, nil
}
