package mlflow

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/sources"
)

// Config is the source's configuration, parsed from a location.
type Config struct {
	API mlflowapi.Config
	// ExperimentPrefix keeps only experiments whose name starts with it, and
	// removes it from their names: the inverse of the sink's option.
	ExperimentPrefix string
	// Deleted also reads deleted experiments and runs.
	Deleted bool
	// RegistryPrefix keeps only registered models whose name starts with
	// it (names unchanged); the others are not read, as runs outside a
	// filter are not. Empty reads the whole registry.
	RegistryPrefix string
}

// Description describes the source for the registry, `runferry backends`
// and the README.
func Description() location.Description {
	return location.Description{
		Scheme:  "mlflow+http",
		Aliases: []string{"mlflow+https"},
		Kind:    location.URLKind,
		Syntax:  "mlflow+http(s)://HOST[:PORT][/PATH]",
		Summary: "MLflow tracking server (REST API)",
		Help: `Reads experiments and runs through the MLflow REST API: params, tags, the full
history of every metric (get-history, paged), nested-run links, dataset inputs
(name, digest, source, schema, profile, context), files (listed recursively,
streamed) and the model registry (registered models, versions, aliases, tags,
stages) and traces (MLflow 3's trace API: info, tags, request metadata, the
run they were logged in, and the span document as the MLflow UI reads it; a
server before MLflow 3 has its traces counted in the report, not copied).
Runs written by runferry are read back exactly: their origin, metadata, console
output and non-numeric values come from the files runferry stored with them.
Credentials: MLFLOW_TRACKING_TOKEN, or basic auth with the user from ?username=
(or USER@HOST, or MLFLOW_TRACKING_USERNAME) and MLFLOW_TRACKING_PASSWORD.
Secrets are read only from the environment: a token or password in the
location is refused.`,
		Options: append([]location.Option{
			{Name: "experiment-prefix", Help: "Read only experiments whose name starts with this, and remove it from their names."},
			{Name: "deleted", Default: "false", Help: "Also read deleted experiments and runs (true/false)."},
			{Name: "registry-prefix", Help: "Read only registered models whose name starts with this (names unchanged); the others are not listed, copied or checked."},
		}, mlflowapi.EnvOptions...),
		Example: "mlflow+http://127.0.0.1:5000?deleted=true",
	}
}

// ParseConfig reads a location and MLflow's environment variables (through
// getenv) into a Config.
func ParseConfig(loc location.Location, getenv func(string) string) (Config, error) {
	api, err := mlflowapi.ConfigFromLocation(loc, getenv)
	if err != nil {
		return Config{}, err
	}
	c := Config{API: api, ExperimentPrefix: loc.Query("experiment-prefix"), RegistryPrefix: loc.Query("registry-prefix")}
	if v := loc.Query("deleted"); v != "" {
		if c.Deleted, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("mlflow: deleted=%q: want true or false", v)
		}
	}
	return c, nil
}

// Open opens the source at loc. It does no I/O; Check proves the server
// reachable.
func Open(_ context.Context, loc location.Location) (sources.Source, error) {
	cfg, err := ParseConfig(loc, os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
