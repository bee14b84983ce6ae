package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/internal/testenv"
)

// TestWandbMediaInMLflowLayout copies the W&B fixtures (written by the real
// SDK, with a wandb.Image and a wandb.Table logged at step 7) into MLflow
// and reads back through MLflow's REST API what its UI reads: the run tags
// mlflow.loggedImages and mlflow.loggedArtifacts, the step image and its
// thumbnail under images/ named as mlflow.log_image names them, and the
// table in log_table's JSON. The MLflow source still gives back the W&B
// run: check finds no difference.
func TestWandbMediaInMLflowLayout(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	root := testenv.RepoRoot(t) + "/testdata/wandb/fixtures"
	src := openWandb(t, root)
	dst, read, _ := pair(t, srv.URL)
	rep := copyAll(t, src, dst)
	var runID string
	for _, r := range rep.Runs {
		if strings.HasSuffix(r.Origin, "/fxa00001") {
			runID = r.DestID
		}
	}
	getJSON := func(route string, q url.Values, v any) []byte {
		t.Helper()
		resp, err := http.Get(srv.URL + route + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s %v: %d %s", route, q, resp.StatusCode, b)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%s: %v: %s", route, err, b)
			}
		}
		return b
	}
	var run struct {
		Run struct {
			Data struct {
				Tags []struct{ Key, Value string } `json:"tags"`
			} `json:"data"`
		} `json:"run"`
	}
	getJSON("/api/2.0/mlflow/runs/get", url.Values{"run_id": {runID}}, &run)
	tags := map[string]string{}
	for _, tg := range run.Run.Data.Tags {
		tags[tg.Key] = tg.Value
	}
	if got := tags["mlflow.loggedImages"]; got != "True" {
		t.Errorf("mlflow.loggedImages = %q, want True (as mlflow.log_image sets it)", got)
	}
	wantTables := `[{"path": "tables/preds/step_7.json", "type": "table"}]`
	if got := tags["mlflow.loggedArtifacts"]; got != wantTables {
		t.Errorf("mlflow.loggedArtifacts = %q, want %q", got, wantTables)
	}

	var list struct {
		Files []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	getJSON("/api/2.0/mlflow/artifacts/list", url.Values{"run_id": {runID}, "path": {"images"}}, &list)
	var names []string
	for _, f := range list.Files {
		names = append(names, f.Path)
	}
	// The UI splits the name at '+': key (with ~ for /), "step", step,
	// "timestamp", milliseconds, id, and "compressed" for the thumbnail.
	re := regexp.MustCompile(`^images/samples~image\+step\+7\+timestamp\+([0-9]{13})\+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\+compressed)?\.png$`)
	if len(names) != 2 {
		t.Fatalf("images/ holds %q, want an image and its thumbnail", names)
	}
	m0, m1 := re.FindStringSubmatch(names[0]), re.FindStringSubmatch(names[1])
	if m0 == nil || m1 == nil || m0[1] != m1[1] || m0[2] != m1[2] || m0[3] != "+compressed" && m1[3] != "+compressed" {
		t.Fatalf("images/ holds %q, not named as mlflow.log_image names an image and its thumbnail", names)
	}
	orig, err := os.ReadFile(root + "/wandb/offline-run-20261125_230205-fxa00001/files/media/images/samples/image_5_d11c20e4894d0e59a9fc.png")
	if err != nil {
		t.Fatal(err)
	}
	artifact := func(p string) []byte {
		t.Helper()
		resp, err := http.Get(srv.URL + "/get-artifact?" + url.Values{"path": {p}, "run_uuid": {runID}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("get-artifact %s: %d %s", p, resp.StatusCode, b)
		}
		return b
	}
	full, thumb := names[0], names[1]
	if strings.Contains(full, "+compressed") {
		full, thumb = thumb, full
	}
	if got := artifact(full); !bytes.Equal(got, orig) {
		t.Errorf("%s is not the W&B image (%d bytes, want %d)", full, len(got), len(orig))
	}
	ti, err := png.Decode(bytes.NewReader(artifact(thumb)))
	if err != nil || ti.Bounds() != image.Rect(0, 0, 8, 8) {
		t.Errorf("thumbnail %s: %v %v, want the 8x8 image", thumb, err, ti)
	}
	wantTable := `{"columns":["id","label","score"],"data":[[1,"cat",0.5],[2,"dog",0.75]]}`
	if got := string(artifact("tables/preds/step_7.json")); got != wantTable {
		t.Errorf("table = %s, want %s", got, wantTable)
	}

	// The generated files and tags are not the W&B run's: the MLflow source
	// leaves them out (check compares files and tags).
	res, err := check.Run(context.Background(), src, read(), check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs MLflow: %v\n%v", err, res.Differences)
	}
}
