package mlflowapi

import (
	"testing"

	"github.com/runferry/runferry/internal/location"
)

func TestConfigFromLocation(t *testing.T) {
	kinds := func(string) (location.Kind, bool) { return location.URLKind, true }
	env := map[string]string{"MLFLOW_TRACKING_TOKEN": "tok-1234"}
	for raw, want := range map[string]string{
		"mlflow+http://127.0.0.1:5000":                          "http://127.0.0.1:5000",
		"mlflow+https://mlflow.example.com/prefix?deleted=true": "https://mlflow.example.com/prefix",
		"mlflow+https://u:pw@h:8443/":                           "https://u:pw@h:8443/",
	} {
		loc, err := location.Parse(raw, kinds)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ConfigFromLocation(loc, func(k string) string { return env[k] })
		if err != nil || cfg.BaseURL != want || cfg.Token != "tok-1234" {
			t.Errorf("%s: BaseURL %q token %q err %v; want %q", raw, cfg.BaseURL, cfg.Token, err, want)
		}
	}
}
