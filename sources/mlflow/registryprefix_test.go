package mlflow_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/mlflow"
)

// TestRegistryPrefix: ?registry-prefix= keeps the registered models whose
// name starts with it, in name order and with their names unchanged, and
// leaves the others on the same server out; without it every model is read.
func TestRegistryPrefix(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("regprefix-%d-", time.Now().UnixNano())
	all := []string{base + "a-one", base + "a-two", base + "ab", base + "b"}
	for _, name := range all {
		if err := api.CreateRegisteredModel(ctx, name, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	names := func(query string) []string {
		t.Helper()
		loc, err := location.Parse("mlflow+"+srv.URL+query, func(string) (location.Kind, bool) { return location.URLKind, true })
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := mlflow.ParseConfig(loc, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		src, err := mlflow.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for m, err := range src.RegisteredModels(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if query != "" || strings.HasPrefix(m.Name, base) {
				got = append(got, m.Name)
			}
		}
		return got
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?registry-prefix=" + base + "a-", all[:2]},
		{"?registry-prefix=" + base + "a", all[:3]},
		{"?registry-prefix=" + base + "b", all[3:]},
		{"?registry-prefix=" + base + "c", nil},
		{"", all}, // this test's models among every other test's
	} {
		if got := names(tc.query); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: models %q, want %q", tc.query, got, tc.want)
		}
	}
}
