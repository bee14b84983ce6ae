package mlflow_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/mlflow"
)

// walkOnly hides mlflowapi.Client's one-directory listing from the
// source, which then walks a run's artifacts with the recursive
// ListArtifacts (artifacts/list, one directory after the other): the
// listing every fingerprint before the concurrent walk was made of.
type walkOnly struct{ mlflow.Backend }

// TestFingerprintArtifactTree: the fingerprint of a FINISHED run lists its
// artifact tree (through the artifact proxy, directories concurrently)
// into the same fingerprint as the one-directory-after-the-other walk of
// artifacts/list, so runs fingerprinted before are not re-copied, also
// where a directory and a file share a prefix ("model" and "model.txt",
// whose order differs between a walk and a sort of whole paths). A file
// logged to the finished run afterwards, two directories deep, changes
// the fingerprint (MLflow records nothing else on the run), and both
// listings still agree.
func TestFingerprintArtifactTree(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	instance, err := mlflowconv.Instance(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("fptree-%d/", testenv.FreePort(t))
	expID, err := api.CreateExperiment(ctx, prefix+"exp", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: "tree", StartTime: 1_700_000_000_000})
	if err != nil {
		t.Fatal(err)
	}
	upload := func(p, body string) {
		t.Helper()
		if err := api.UploadArtifact(ctx, r.Info.ArtifactURI, p, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"a.txt", "model.txt", "model/MLmodel", "model/sub/deep.bin", "model-b/x", "plots/loss.csv", "plots/z/1.png"} {
		upload(p, "body of "+p)
	}
	end := int64(1_700_000_100_000)
	if err := api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: r.Info.RunID, Status: "FINISHED", EndTime: &end}); err != nil {
		t.Fatal(err)
	}
	// both fingerprints the run with a fresh source of each kind, as the
	// next sync's process would.
	both := func() (tree, walk string) {
		t.Helper()
		src, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		old := mlflow.NewWithBackend(walkOnly{api}, instance, mlflow.Config{ExperimentPrefix: prefix})
		var fps [2]string
		for i, s := range []*mlflow.Source{src, old} {
			n := 0
			for e, err := range s.Experiments(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				for run, err := range s.Runs(ctx, e.Origin) {
					if err != nil {
						t.Fatal(err)
					}
					if fps[i], err = s.Fingerprint(ctx, run); err != nil || fps[i] == "" {
						t.Fatalf("fingerprint %q: %v", fps[i], err)
					}
					n++
				}
			}
			if n != 1 {
				t.Fatalf("listed %d runs, want 1", n)
			}
		}
		return fps[0], fps[1]
	}
	before, walked := both()
	if before != walked {
		t.Fatalf("the concurrent listing's fingerprint %s differs from the walk's %s: every run fingerprinted before would be copied again", before, walked)
	}
	upload("model/sub/late.txt", "logged after the run ended")
	after, walked := both()
	if after == before {
		t.Fatalf("a file logged to the finished run did not change its fingerprint (%s)", after)
	}
	if after != walked {
		t.Fatalf("after a file was added: the concurrent listing's fingerprint %s differs from the walk's %s", after, walked)
	}
}
