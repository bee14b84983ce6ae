package mlflowsql

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestArtifactDir: the artifact locations MLflow writes, mapped to folders
// here or refused with a reason.
func TestArtifactDir(t *testing.T) {
	s := &store{artifacts: "/srv/art"}
	for _, tt := range []struct{ uri, dir, why string }{
		{"/data/mlruns/1/abc/artifacts", "/data/mlruns/1/abc/artifacts", ""},
		{"file:///data/mlruns/1/abc/artifacts", "/data/mlruns/1/abc/artifacts", ""},
		{"file:///data/with%20space/artifacts", "/data/with space/artifacts", ""},
		{"mlflow-artifacts:/1/abc/artifacts", "/srv/art/1/abc/artifacts", ""},
		{"mlflow-artifacts://host:5000/1/abc/artifacts", "/srv/art/1/abc/artifacts", ""},
		{"mlflow-artifacts:/../../etc", "/srv/art/etc", ""},
		{"file:///C:/Users/x/mlruns/1/abc/artifacts", "", "Windows paths"},
		{"s3://bucket/1/abc/artifacts", "", "s3: locations (only local folders are read directly)"},
		{"./mlruns/1/abc/artifacts", "", "relative artifact locations (relative to where the server ran)"},
		{"", "", "no artifact location"},
	} {
		dir, why := s.artifactDir(tt.uri)
		if dir != filepath.FromSlash(tt.dir) || why != tt.why {
			t.Errorf("artifactDir(%q) = %q, %q; want %q, %q", tt.uri, dir, why, tt.dir, tt.why)
		}
	}
	if _, why := (&store{}).artifactDir("mlflow-artifacts:/1/abc/artifacts"); !strings.Contains(why, "?artifacts=") {
		t.Errorf("mlflow-artifacts: without the option: %q", why)
	}
}

// FuzzArtifactDir: an artifact location from the database (outside bytes)
// never panics, and an mlflow-artifacts: one never leaves the artifacts
// folder.
func FuzzArtifactDir(f *testing.F) {
	for _, s := range []string{"mlflow-artifacts:/1/a", "mlflow-artifacts:/../x", "file:///a/b", "/a", "s3://b/c", "mlflow-artifacts:%2e%2e/x", "file:c:/x"} {
		f.Add(s)
	}
	s := &store{artifacts: "/srv/art"}
	f.Fuzz(func(t *testing.T, uri string) {
		dir, why := s.artifactDir(uri)
		if why == "" && strings.HasPrefix(uri, "mlflow-artifacts:") && dir != "/srv/art" && !strings.HasPrefix(dir, "/srv/art/") {
			t.Fatalf("artifactDir(%q) = %q: outside the artifacts folder", uri, dir)
		}
	})
}
