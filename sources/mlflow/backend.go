package mlflow

import (
	"context"
	"io"
	"iter"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// Backend is what the source reads an MLflow tracking store through, in
// the REST API's terms (internal/mlflowapi's types and errors): the REST
// client itself (*mlflowapi.Client), or a reader of MLflow's own stores
// (sources/mlflowfile for mlruns/ folders) that answers as a server
// serving that store would. Everything the source makes of MLflow's data
// (origins, the mapping of fields and tags, runferry's sidecars) is the
// source's, so each backend yields the same runs for the same store.
//
// Contracts are those of the mlflowapi.Client methods of the same names:
// orders (experiments by id, runs by start time then id, a key's history in
// the store's order), "not found" as an error mlflowapi.IsNotFound reports,
// ListProxied's mlflowapi.ErrNotProxied for a root it cannot list.
type Backend interface {
	Ping(ctx context.Context) error
	SearchExperiments(ctx context.Context, filter, view string) iter.Seq2[mlflowapi.Experiment, error]
	SearchRuns(ctx context.Context, experimentIDs []string, filter, view string) iter.Seq2[mlflowapi.Run, error]
	GetRun(ctx context.Context, runID string) (mlflowapi.Run, error)
	MetricHistory(ctx context.Context, runID, key string) iter.Seq2[[]mlflowapi.Metric, error]
	ListArtifacts(ctx context.Context, runID, dir string) iter.Seq2[mlflowapi.FileInfo, error]
	OpenArtifact(ctx context.Context, runID, artifactURI, rel string) (io.ReadCloser, error)
	LoggedModelsOf(ctx context.Context, expID, runID string) ([]mlflowapi.LoggedModel, error)
	GetLoggedModel(ctx context.Context, id string, allowDeleted bool) (mlflowapi.LoggedModel, error)
	ListProxied(ctx context.Context, uri string) iter.Seq2[mlflowapi.FileInfo, error]
	SearchRegisteredModels(ctx context.Context) iter.Seq2[mlflowapi.RegisteredModel, error]
	GetRegisteredModel(ctx context.Context, name string) (mlflowapi.RegisteredModel, error)
	SearchModelVersions(ctx context.Context, name string) iter.Seq2[mlflowapi.ModelVersion, error]
	SearchTraces(ctx context.Context, experimentIDs []string) iter.Seq2[mlflowapi.TraceInfo, error]
	TraceData(ctx context.Context, info mlflowapi.TraceInfo) ([]byte, error)
	CountTraces(ctx context.Context, experimentIDs []string) (int64, error)
}

var _ Backend = (*mlflowapi.Client)(nil)

// NewWithBackend returns a source reading backend b, whose native
// experiments and runs get the origins mlflow:INSTANCE/ID with the
// instance given (see mlflowconv.Instance: for a store a server serves,
// the server's instance, so that both read the same runs). cfg.API is not
// used.
func NewWithBackend(b Backend, instance string, cfg Config) *Source {
	return &Source{api: b, cfg: cfg, instance: instance, exps: map[schema.Ref]string{}, runs: map[schema.Ref]*runInfo{}, listed: map[string]bool{}, listing: make(chan struct{}, ListWindow)}
}
