package mlflowfile

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/sources"
)

// Scheme is the scheme of this source's locations.
const Scheme = "mlflow+file"

// Config is the source's configuration, parsed from a location.
type Config struct {
	// Root is the store: the mlruns/ folder (absolute after ParseConfig).
	Root string
	// Instance names the store in origins (mlflow:INSTANCE/ID): by default
	// "file" followed by Root's absolute path; the instance of the server
	// that serves the store (HOST[:PORT][/PATH]) gives the runs the origins
	// that server gives them, so that copies made through it are the same
	// runs.
	Instance string
	// ArtifactsDestination is where mlflow-artifacts: URIs point (the
	// server's --artifacts-destination); "" for ./mlartifacts beside Root.
	ArtifactsDestination string
	// ArtifactFallback looks for files next to the store when an artifact
	// URI does not resolve (the default).
	ArtifactFallback bool
	// ExperimentPrefix and Deleted as for the MLflow source.
	ExperimentPrefix string
	Deleted          bool
}

// Description describes the source for the registry, `runferry backends`
// and the README.
func Description() location.Description {
	return location.Description{
		Scheme:  Scheme,
		Kind:    location.PathKind,
		Syntax:  "mlflow+file:PATH",
		Summary: "MLflow file store (an mlruns/ folder), read directly without a server",
		Help: `Reads an MLflow file store (mlruns/) of any MLflow version, from 1.x layouts to
MLflow 3's logged models, without a tracking server, and yields exactly what the
MLflow source reads from a server serving the same folder: the same experiments,
runs, params, tags, metric histories (duplicated lines kept as MLflow keeps
them), dataset inputs, files, logged models and model registry. Experiments
and runs under .trash/ and runs marked deleted are read with ?deleted=true.
Artifacts are read where their URIs point (file:, bare paths, %-escapes,
mlflow-artifacts: below ?artifacts-destination=); a URI that no longer resolves
(a store moved or made on Windows) is looked up next to the store; a run whose
files are nowhere is named in its damage when its tags say it logged files (a
model, images), else counted in the report. Damaged files stop the run (or
listing) they belong to with an error naming the file and line, after every
record before the damage. MLflow 3 traces are read with their span documents.`,
		Options: []location.Option{
			{Name: "instance", Help: "Name the store by the server that serves it (HOST[:PORT][/PATH], as in its mlflow+http:// location), so runs get the origins that server gives them (default: file + the store's absolute path)."},
			{Name: "artifacts-destination", Help: "Folder that mlflow-artifacts: URIs point to (the server's --artifacts-destination; default: mlartifacts beside the store)."},
			{Name: "artifact-fallback", Default: "true", Help: "Look for files next to the store when an artifact URI does not resolve (true/false); false reads them only where the URIs point, as a server serving the store does."},
			{Name: "experiment-prefix", Help: "Read only experiments whose name starts with this, and remove it from their names."},
			{Name: "deleted", Default: "false", Help: "Also read deleted experiments (.trash/) and runs (true/false)."},
		},
		Example: "runferry copy mlflow+file:./mlruns parquet:/backups/mlflow",
	}
}

// ParseConfig reads a location into a Config.
func ParseConfig(loc location.Location) (Config, error) {
	if loc.Path == "" {
		return Config{}, fmt.Errorf("%s: empty path", Scheme)
	}
	root, err := filepath.Abs(loc.Path)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Root: root, Instance: loc.Query("instance"), ArtifactFallback: true,
		ExperimentPrefix: loc.Query("experiment-prefix")}
	if cfg.Instance == "" {
		cfg.Instance = "file" + filepath.ToSlash(root)
	}
	if d := loc.Query("artifacts-destination"); d != "" {
		if cfg.ArtifactsDestination, err = filepath.Abs(d); err != nil {
			return Config{}, err
		}
	}
	for name, dst := range map[string]*bool{"deleted": &cfg.Deleted, "artifact-fallback": &cfg.ArtifactFallback} {
		if v := loc.Query(name); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return Config{}, fmt.Errorf("%s: %s=%q: want true or false", Scheme, name, v)
			}
		}
	}
	return cfg, nil
}

// Open opens the source at loc. It does no I/O; Check proves the folder
// readable.
func Open(_ context.Context, loc location.Location) (sources.Source, error) {
	cfg, err := ParseConfig(loc)
	if err != nil {
		return nil, err
	}
	return New(cfg), nil
}
