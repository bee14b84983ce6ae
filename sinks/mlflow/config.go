package mlflow

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/sinks"
)

// Config is the sink's configuration, parsed from a location.
type Config struct {
	API              mlflowapi.Config
	ExperimentPrefix string // prepended to every experiment name
	MaxInFlight      int    // runs written at once
	// PerCoreCPU keeps W&B's per-core CPU series as series of their own
	// (system/cpu_core_NNN_utilization_percentage) besides their mean.
	PerCoreCPU bool
}

// DefaultMaxInFlight is the number of runs written at once by default.
const DefaultMaxInFlight = 8

// Description describes the sink for the registry, `runferry backends` and
// the README.
func Description() location.Description {
	return location.Description{
		Scheme:  "mlflow+http",
		Aliases: []string{"mlflow+https"},
		Kind:    location.URLKind,
		Syntax:  "mlflow+http(s)://HOST[:PORT][/PATH]",
		Summary: "MLflow tracking server (REST API, artifacts through the mlflow-artifacts proxy)",
		Help: `Writes experiments and runs through the MLflow REST API: params, tags, the full
metric history (log-batch within the server's limits), original start and end
times, status, user, run name, notes, nested-run links, console output
(output.log), non-numeric history values, files (through the server's
mlflow-artifacts proxy), the model registry and traces (MLflow 3: info, tags,
request metadata, spans as traces.json, linked to the copy of their run). What MLflow cannot hold as given is mapped reversibly and
counted in runferry/coverage.json; runferry/run.json keeps the run's metadata
exactly. W&B runs look native: W&B tags as wandb.tag.NAME tags, system metrics
under MLflow's own names, per-core CPU folded (docs/MLFLOW-MAPPING.md). Every run
carries the visible tag runferry.origin; the bookkeeping tags hide under
mlflow.runferry., and mlflow.runferry.complete is written last, so an
interrupted copy is found and redone (the incomplete run is deleted and written
afresh) and a repeated copy creates nothing twice.
Credentials: MLFLOW_TRACKING_TOKEN, or basic auth with the user from ?username=
(or USER@HOST, or MLFLOW_TRACKING_USERNAME) and MLFLOW_TRACKING_PASSWORD.
Secrets are read only from the environment: a token or password in the
location is refused.`,
		Options: append([]location.Option{
			{Name: "experiment-prefix", Help: "Prepend this to every experiment name (e.g. 'wandb/')."},
			{Name: "max-in-flight", Default: strconv.Itoa(DefaultMaxInFlight), Help: "Runs written at once."},
			{Name: "per-core-cpu", Default: "false", Help: "Also write W&B's per-core CPU series (system/cpu_core_NNN_utilization_percentage); by default they are folded into their mean, system/cpu_utilization_percentage, and kept exactly in runferry/folded_metrics.jsonl."},
		}, mlflowapi.EnvOptions...),
		Example: "mlflow+https://mlflow.example.com?experiment-prefix=wandb/",
	}
}

// ParseConfig reads a location and MLflow's environment variables (through
// getenv) into a Config.
func ParseConfig(loc location.Location, getenv func(string) string) (Config, error) {
	api, err := mlflowapi.ConfigFromLocation(loc, getenv)
	if err != nil {
		return Config{}, err
	}
	c := Config{API: api, ExperimentPrefix: loc.Query("experiment-prefix"), MaxInFlight: DefaultMaxInFlight}
	if v := loc.Query("max-in-flight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("mlflow: max-in-flight=%q: want a positive number", v)
		}
		c.MaxInFlight = n
	}
	if v := loc.Query("per-core-cpu"); v != "" {
		if c.PerCoreCPU, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("mlflow: per-core-cpu=%q: want true or false", v)
		}
	}
	return c, nil
}

// Open opens the sink at loc. It does no I/O; the engine's Check proves the
// server reachable.
func Open(_ context.Context, loc location.Location) (sinks.Sink, error) {
	cfg, err := ParseConfig(loc, os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}
