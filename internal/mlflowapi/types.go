package mlflowapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Wire types of the MLflow REST API (mlflow/protos/service.proto), in the
// JSON form the server speaks: snake_case field names, int64 as numbers,
// enums by name, unset fields omitted.

// Tag is a key/value pair of an experiment, a run or a dataset input.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Param is a run parameter.
type Param struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is one point of a metric history.
type Metric struct {
	Key       string `json:"key"`
	Value     Float  `json:"value"`
	Timestamp int64  `json:"timestamp"`
	Step      int64  `json:"step"`
}

// Float is a double in protobuf's JSON mapping: a number, or one of the
// strings "NaN", "Infinity" and "-Infinity".
type Float float64

// MarshalJSON writes non-finite values as protobuf's strings.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON accepts a number or a quoted number or non-finite name.
func (f *Float) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = Float(math.NaN())
		case "Infinity":
			*f = Float(math.Inf(1))
		case "-Infinity":
			*f = Float(math.Inf(-1))
		default:
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("metric value %q: %v", s, err)
			}
			*f = Float(v)
		}
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("metric value %s: %v", b, err)
	}
	*f = Float(v)
	return nil
}

// Experiment is an MLflow experiment.
type Experiment struct {
	ExperimentID     string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location,omitempty"`
	LifecycleStage   string `json:"lifecycle_stage,omitempty"` // "active" or "deleted"
	CreationTime     int64  `json:"creation_time,omitempty"`
	LastUpdateTime   int64  `json:"last_update_time,omitempty"`
	Tags             []Tag  `json:"tags,omitempty"`
}

// Lifecycle stages of experiments and runs.
const (
	StageActive  = "active"
	StageDeleted = "deleted"
)

// View types of searches.
const (
	ViewActive  = "ACTIVE_ONLY"
	ViewDeleted = "DELETED_ONLY"
	ViewAll     = "ALL"
)

// RunInfo is a run's metadata.
type RunInfo struct {
	RunID          string `json:"run_id"`
	ExperimentID   string `json:"experiment_id"`
	RunName        string `json:"run_name,omitempty"`
	UserID         string `json:"user_id,omitempty"`
	Status         string `json:"status,omitempty"` // RUNNING, SCHEDULED, FINISHED, FAILED, KILLED
	StartTime      int64  `json:"start_time,omitempty"`
	EndTime        *int64 `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri,omitempty"`
	LifecycleStage string `json:"lifecycle_stage,omitempty"`
}

// RunData holds a run's params, tags and latest metric values (one per key;
// the full history needs MetricHistory).
type RunData struct {
	Metrics []Metric `json:"metrics,omitempty"`
	Params  []Param  `json:"params,omitempty"`
	Tags    []Tag    `json:"tags,omitempty"`
}

// Dataset is a dataset logged as a run input.
type Dataset struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type,omitempty"`
	Source     string `json:"source,omitempty"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// DatasetInput links a dataset to a run.
type DatasetInput struct {
	Tags    []Tag   `json:"tags,omitempty"`
	Dataset Dataset `json:"dataset"`
}

// RunInputs are a run's inputs.
type RunInputs struct {
	DatasetInputs []DatasetInput `json:"dataset_inputs,omitempty"`
}

// Run is a run as runs/get and runs/search return it.
type Run struct {
	Info   RunInfo   `json:"info"`
	Data   RunData   `json:"data"`
	Inputs RunInputs `json:"inputs"`
}

// Tag returns the value of the run's tag key and whether it is set.
func (r *Run) Tag(key string) (string, bool) {
	for _, t := range r.Data.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// FileInfo is one entry of an artifact listing; Path is relative to the
// run's artifact root.
type FileInfo struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir,omitempty"`
	FileSize *int64 `json:"file_size,omitempty"`
}

// CreateRun is the body of runs/create.
type CreateRun struct {
	ExperimentID string `json:"experiment_id"`
	UserID       string `json:"user_id,omitempty"`
	RunName      string `json:"run_name,omitempty"`
	StartTime    int64  `json:"start_time"`
	Tags         []Tag  `json:"tags,omitempty"`
}

// UpdateRun is the body of runs/update.
type UpdateRun struct {
	RunID   string `json:"run_id"`
	Status  string `json:"status,omitempty"`
	EndTime *int64 `json:"end_time,omitempty"`
	RunName string `json:"run_name,omitempty"`
}

// LogBatch is the body of runs/log-batch. The server takes at most
// MaxMetricsPerBatch metrics, MaxParamsTagsPerBatch params and as many
// tags, MaxEntitiesPerBatch in all.
type LogBatch struct {
	RunID   string   `json:"run_id"`
	Metrics []Metric `json:"metrics,omitempty"`
	Params  []Param  `json:"params,omitempty"`
	Tags    []Tag    `json:"tags,omitempty"`
}

// SearchRuns is the body of runs/search.
type SearchRuns struct {
	ExperimentIDs []string `json:"experiment_ids"`
	Filter        string   `json:"filter,omitempty"`
	RunViewType   string   `json:"run_view_type,omitempty"`
	MaxResults    int      `json:"max_results"`
	OrderBy       []string `json:"order_by,omitempty"`
	PageToken     string   `json:"page_token,omitempty"`
}

// SearchExperiments is the body of experiments/search.
type SearchExperiments struct {
	MaxResults int      `json:"max_results"`
	PageToken  string   `json:"page_token,omitempty"`
	Filter     string   `json:"filter,omitempty"`
	OrderBy    []string `json:"order_by,omitempty"`
	ViewType   string   `json:"view_type,omitempty"`
}

// Server limits (mlflow/utils/validation.py, MLflow 3.x). Lengths count
// Unicode code points.
const (
	MaxMetricsPerBatch     = 1000
	MaxParamsTagsPerBatch  = 100
	MaxEntitiesPerBatch    = 1000
	MaxBatchBytes          = 1_000_000 // keep request bodies under this
	MaxKeyLength           = 250
	MaxParamValueLength    = 6000
	MaxTagValueLength      = 8000
	MaxExperimentTagValue  = 5000
	MaxExperimentNameBytes = 256 // the VARCHAR(256) column on PostgreSQL/MySQL
	MaxRunNameLength       = 250
	HistoryPageSize        = 25000 // get-history max_results, as the Python client
	SearchPageSize         = 1000  // experiments/search max_results (a few pages at most; hosted servers cap it lower than runs)
	RunSearchPageSize      = 50000 // runs/search max_results: the server's maximum (SEARCH_MAX_RESULTS_THRESHOLD), one round trip per 50,000 runs
)
