package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/mlflowtest"
	"github.com/runferry/runferry/internal/testenv"
)

// TestWandbDetailsInOneTag: of W&B's facts, the ones a user filters runs
// by (entity, project, run id, group, job type, W&B tags) are tags of
// their own; the rest (os, python, SDK version, CPU count, exit code, ...)
// are one JSON tag, wandb.details, and the W&B tags are not repeated as a
// list. The copy reads back exactly; so does a copy in the former layout
// (sidecar version 1: each fact its own tag, and wandb.tags).
func TestWandbDetailsInOneTag(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	src := openWandb(t, testenv.RepoRoot(t)+"/testdata/wandb/fixtures")
	dst, read, prefix := pair(t, srv.URL)
	rep, err := transfer.Copy(ctx, src, dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed == 0 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	if res, err := check.Run(ctx, src, read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check: %v\n%v", err, res.Differences)
	}
	api := mlflowtest.Client(t, srv.URL)
	own := map[string]bool{"wandb.entity": true, "wandb.project": true, "wandb.run_id": true, "wandb.sweep_id": true,
		"wandb.url": true, "wandb.state": true, "wandb.group": true, "wandb.job_type": true, mlflowconv.TagDetails: true,
		mlflowconv.TagHost: true, mlflowconv.TagStepMetric: true}
	nRuns, nDetails := 0, 0
	for _, r := range mlflowtest.Runs(t, api, prefix, mlflowapi.ViewAll) {
		nRuns++
		tags := tagMap(r.Data.Tags)
		for k := range tags {
			if strings.HasPrefix(k, "wandb.") && !own[k] && !strings.HasPrefix(k, mlflowconv.TagLabelPrefix) && !strings.HasPrefix(k, mlflowconv.SummaryTagPrefix) {
				t.Errorf("run %s: tag %s is not in %s", r.Info.RunName, k, mlflowconv.TagDetails)
			}
		}
		var details map[string]string
		if v, ok := tags[mlflowconv.TagDetails]; ok {
			nDetails++
			if err := json.Unmarshal([]byte(v), &details); err != nil || details["os"] == "" || details["python"] == "" {
				t.Errorf("run %s: %s = %s (%v)", r.Info.RunName, mlflowconv.TagDetails, v, err)
			}
		}

		// Back to the former layout, as a copy by an earlier version.
		body, err := api.OpenArtifact(ctx, r.Info.RunID, r.Info.ArtifactURI, mlflowconv.SidecarPath)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(body)
		body.Close()
		var side mlflowconv.Sidecar
		if err := json.Unmarshal(raw, &side); err != nil || side.Version != 2 {
			t.Fatalf("run %s: run.json version %d, %v", r.Info.RunName, side.Version, err)
		}
		raw = bytes.Replace(raw, []byte(`"version": 2`), []byte(`"version": 1`), 1)
		if err := api.UploadArtifact(ctx, r.Info.ArtifactURI, mlflowconv.SidecarPath, bytes.NewReader(raw), int64(len(raw))); err != nil {
			t.Fatal(err)
		}
		for k, v := range details {
			if err := api.SetTag(ctx, r.Info.RunID, "wandb."+k, v); err != nil {
				t.Fatal(err)
			}
		}
		if details != nil {
			post(t, srv.URL, "runs/delete-tag", map[string]string{"run_id": r.Info.RunID, "key": mlflowconv.TagDetails})
		}
		if len(side.Run.Labels) > 0 {
			list, _ := json.Marshal(side.Run.Labels)
			if err := api.SetTag(ctx, r.Info.RunID, mlflowconv.TagLabels, string(list)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if nRuns == 0 || nDetails == 0 {
		t.Fatalf("%d runs, %d with %s", nRuns, nDetails, mlflowconv.TagDetails)
	}
	if res, err := check.Run(ctx, src, read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs the former layout: %v\n%v", err, res.Differences)
	}
}
