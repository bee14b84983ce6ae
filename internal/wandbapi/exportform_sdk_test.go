package wandbapi

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestExportFormFieldsAreTheSDKs: the runs page in export form
// (exportListingQuery), which the wandb SDK never sends and W&B ships no
// GraphQL schema to check against, asks of each run only fields the SDK
// itself asks of a run, with the same arguments: parquetHistory(liveKeys:)
// { parquetUrls liveData } as wandb-core's RunParquetHistory query (the
// text in the wandb-core binary), files(first:) with its node's fields as
// wandb/apis/public/files.py, outputArtifacts and inputArtifacts (after:,
// first:) as wandb/sdk/artifacts/_generated/operations.py. It reads the
// wandb package of the test venv (requirements-test.txt), so an SDK that
// drops or renames one of these fails it. What it cannot show: that W&B's
// server answers them together inside a runs page (docs/WANDB-CLOUD.md,
// gap 2).
func TestExportFormFieldsAreTheSDKs(t *testing.T) {
	pkgs, _ := filepath.Glob(filepath.Join(testenv.Venv(t), "lib", "python3*", "site-packages", "wandb"))
	if len(pkgs) != 1 {
		t.Fatalf("the venv's wandb package: %v", pkgs)
	}
	// flat collapses every run of white space to one space.
	flat := func(b []byte) string { return string(bytes.Join(bytes.Fields(b), []byte(" "))) }
	// read is the text of a file of the package; of the wandb-core
	// binary, the stretches around its parquetHistory queries.
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(pkgs[0], rel))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rel, "bin/") {
			return flat(b)
		}
		var near []string
		for rest := b; ; {
			i := bytes.Index(rest, []byte("parquetHistory("))
			if i < 0 {
				break
			}
			near = append(near, flat(rest[max(0, i-300):min(len(rest), i+300)]))
			rest = rest[i+1:]
		}
		return strings.Join(near, "\n")
	}
	ours := flat([]byte(exportListingQuery))
	for _, c := range []struct {
		file string
		ours string // in runferry's export form
		sdks string // in the SDK's own query on a run
	}{
		{"bin/wandb-core", "parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData }",
			"run(name: $runName) { parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData"},
		{"apis/public/files.py", "files(first: $filesPerPage) {", "files(names: $fileNames, after: $fileCursor, first: $fileLimit, pattern: $pattern) {"},
		{"apis/public/files.py", "node { name url(upload: false) directUrl sizeBytes mimetype updatedAt md5 }",
			"node { id name url(upload: $upload) directUrl sizeBytes mimetype updatedAt md5"},
		{"sdk/artifacts/_generated/operations.py", "outputArtifacts(first: $artifactsPerPage) {",
			"run(name: $run) { artifacts: outputArtifacts(after: $cursor, first: $perPage) {"},
		{"sdk/artifacts/_generated/operations.py", "inputArtifacts(first: $artifactsPerPage) {",
			"run(name: $run) { artifacts: inputArtifacts(after: $cursor, first: $perPage) {"},
	} {
		if !strings.Contains(ours, c.ours) {
			t.Errorf("runferry's export form lacks %q", c.ours)
		}
		if !strings.Contains(read(c.file), c.sdks) {
			t.Errorf("the SDK's %s lacks %q", c.file, c.sdks)
		}
	}
}
