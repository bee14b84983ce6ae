package mlflowfile

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// The meta.yaml documents of a file store, as MLflow's FileStore writes
// them (mlflow/store/tracking/file_store.py and the model registry's
// file_store.py). Fields of every era are accepted: ids written as
// integers (1.x) or strings, a run's name under run_name or the older
// name, status as MLflow's integer enum, null for unset times.

// experimentMeta is <experiment>/meta.yaml.
type experimentMeta struct {
	ExperimentID     yamlString `yaml:"experiment_id"`
	Name             string     `yaml:"name"`
	ArtifactLocation string     `yaml:"artifact_location"`
	LifecycleStage   string     `yaml:"lifecycle_stage"`
	CreationTime     *int64     `yaml:"creation_time"`
	LastUpdateTime   *int64     `yaml:"last_update_time"`
}

// runMeta is <experiment>/<run>/meta.yaml.
type runMeta struct {
	RunID          string     `yaml:"run_id"`
	RunUUID        string     `yaml:"run_uuid"`
	ExperimentID   yamlString `yaml:"experiment_id"`
	RunName        string     `yaml:"run_name"`
	UserID         string     `yaml:"user_id"`
	Status         *int       `yaml:"status"`
	StartTime      *int64     `yaml:"start_time"`
	EndTime        *int64     `yaml:"end_time"`
	ArtifactURI    string     `yaml:"artifact_uri"`
	LifecycleStage string     `yaml:"lifecycle_stage"`
}

// datasetMeta is <experiment>/datasets/<id>/meta.yaml.
type datasetMeta struct {
	Name       string `yaml:"name"`
	Digest     string `yaml:"digest"`
	SourceType string `yaml:"source_type"`
	Source     string `yaml:"source"`
	Schema     string `yaml:"schema"`
	Profile    string `yaml:"profile"`
}

// linkMeta is <run>/inputs/<id>/meta.yaml and <run>/outputs/<id>/meta.yaml:
// a dataset or model input of the run, or a model output. The writer puts
// the source id in destination_id too; the run is the folder's.
type linkMeta struct {
	SourceType      string            `yaml:"source_type"` // DATASET, MODEL, RUN_OUTPUT
	SourceID        string            `yaml:"source_id"`
	DestinationType string            `yaml:"destination_type"` // RUN, MODEL_OUTPUT
	DestinationID   string            `yaml:"destination_id"`
	Tags            map[string]string `yaml:"tags"`
	Step            int64             `yaml:"step"`
}

// modelMeta is <experiment>/models/<model id>/meta.yaml (MLflow 3).
type modelMeta struct {
	ModelID          string     `yaml:"model_id"`
	ExperimentID     yamlString `yaml:"experiment_id"`
	Name             string     `yaml:"name"`
	ArtifactLocation string     `yaml:"artifact_location"`
	CreationTime     *int64     `yaml:"creation_timestamp"`
	ModelType        *string    `yaml:"model_type"`
	SourceRunID      *string    `yaml:"source_run_id"`
	Status           *int       `yaml:"status"`
	LifecycleStage   string     `yaml:"lifecycle_stage"`
}

// registeredModelMeta is models/<name>/meta.yaml of the registry.
type registeredModelMeta struct {
	Name        string  `yaml:"name"`
	Creation    *int64  `yaml:"creation_timestamp"`
	LastUpdated *int64  `yaml:"last_updated_timestamp"`
	Description *string `yaml:"description"`
}

// modelVersionMeta is models/<name>/version-<n>/meta.yaml of the registry.
type modelVersionMeta struct {
	Name         string     `yaml:"name"`
	Version      yamlString `yaml:"version"`
	Creation     *int64     `yaml:"creation_timestamp"`
	LastUpdated  *int64     `yaml:"last_updated_timestamp"`
	CurrentStage *string    `yaml:"current_stage"`
	Description  *string    `yaml:"description"`
	Source       *string    `yaml:"source"`
	RunID        *string    `yaml:"run_id"`
	Status       *string    `yaml:"status"`
	ModelID      *string    `yaml:"model_id"`
}

// yamlString is a scalar read as its text: experiment ids were integers
// before MLflow 1.0's string ids, versions may be either.
type yamlString string

// UnmarshalYAML accepts any scalar (null is "").
func (s *yamlString) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a scalar, got a %s", n.Line, kindName(n.Kind))
	}
	if n.Tag == "!!null" {
		*s = ""
		return nil
	}
	*s = yamlString(n.Value)
	return nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// errNoMeta is returned by readMeta for a folder without meta.yaml: MLflow
// skips such folders (they are not experiments, runs or models).
var errNoMeta = fmt.Errorf("no meta.yaml")

// readMeta decodes the YAML file at path into v. A missing file is
// errNoMeta; damage is an error naming the file and the line.
func readMeta(path string, v any) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return errNoMeta
	}
	if err != nil {
		return err
	}
	return decodeMeta(path, b, v)
}

// decodeMeta decodes one meta.yaml document; an empty one (MLflow's reader
// treats it as missing) is errNoMeta.
func decodeMeta(path string, b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errNoMeta
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err) // yaml's errors name the line
	}
	return nil
}

// runStatus is the name of MLflow's integer run status; a missing status
// is RUNNING, as MLflow reads it.
func runStatus(s *int) (string, error) {
	if s == nil {
		return "RUNNING", nil
	}
	switch *s {
	case 1:
		return "RUNNING", nil
	case 2:
		return "SCHEDULED", nil
	case 3:
		return "FINISHED", nil
	case 4:
		return "FAILED", nil
	case 5:
		return "KILLED", nil
	}
	return "", fmt.Errorf("status %d: want 1 to 5 (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)", *s)
}

// modelStatus is the name of MLflow's integer logged-model status.
func modelStatus(s *int) string {
	if s == nil {
		return ""
	}
	switch *s {
	case 1:
		return "LOGGED_MODEL_PENDING"
	case 2:
		return "LOGGED_MODEL_READY"
	case 3:
		return "LOGGED_MODEL_UPLOAD_FAILED"
	}
	return "LOGGED_MODEL_STATUS_UNSPECIFIED"
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
