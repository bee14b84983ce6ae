package mlflow_test

import (
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/sinks/mlflow"
)

// TestExperimentURL: the address keeps the tracking URI's path and leaves
// out its user, query and fragment.
func TestExperimentURL(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:5000":                     "http://127.0.0.1:5000/#/experiments/7?workflowType=machine_learning",
		"https://ml@mlflow.example.com/team/?x=1#f": "https://mlflow.example.com/team/#/experiments/7?workflowType=machine_learning",
	} {
		s, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: base}})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.ExperimentURL("7"); got != want {
			t.Errorf("ExperimentURL for %s = %s, want %s", base, got, want)
		}
	}
}
