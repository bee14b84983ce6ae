package mlflowfile

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowlocal"
)

// datasetInputs reads the dataset inputs of the run in runDir: each
// inputs/<id>/meta.yaml of source type DATASET names a folder of the
// experiment's datasets/. An input whose dataset folder is gone is left
// out, as MLflow leaves it out.
func datasetInputs(expDir, runDir string) ([]mlflowapi.DatasetInput, error) {
	names, err := subdirs(filepath.Join(runDir, "inputs"))
	if err != nil || len(names) == 0 {
		return nil, err
	}
	var out []mlflowapi.DatasetInput
	for _, n := range names {
		var in linkMeta
		p := filepath.Join(runDir, "inputs", n, metaFile)
		err := readMeta(p, &in)
		if errors.Is(err, errNoMeta) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if in.SourceType != "DATASET" {
			continue // MODEL inputs: not part of runs/get's dataset inputs
		}
		if !mlflowlocal.ValidRel(in.SourceID) || strings.Contains(in.SourceID, "/") {
			return nil, fmt.Errorf("%s: bad source_id %q", p, in.SourceID)
		}
		var d datasetMeta
		dp := filepath.Join(expDir, "datasets", in.SourceID, metaFile)
		err = readMeta(dp, &d)
		if errors.Is(err, errNoMeta) {
			continue
		}
		if err != nil {
			return nil, err
		}
		x := mlflowapi.DatasetInput{Dataset: mlflowapi.Dataset{Name: d.Name, Digest: d.Digest, SourceType: d.SourceType,
			Source: d.Source, Schema: d.Schema, Profile: d.Profile}}
		for _, k := range sortedKeys(in.Tags) {
			x.Tags = append(x.Tags, mlflowapi.Tag{Key: k, Value: in.Tags[k]})
		}
		out = append(out, x)
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
