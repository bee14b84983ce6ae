package mlflowconv

import "testing"

// TestStoredPath: source files under runferry/ and those named as the
// console's later segments are stored below FilesDir; every other path,
// output.log itself included, is stored as it is.
func TestStoredPath(t *testing.T) {
	for p, want := range map[string]string{
		"output.log":           "output.log",
		"output.1.log":         FilesDir + "output.1.log",
		"output.12.log":        FilesDir + "output.12.log",
		"output.01.log":        "output.01.log",
		"output.0.log":         "output.0.log",
		"output..log":          "output..log",
		"output.1a.log":        "output.1a.log",
		"logs/output.1.log":    "logs/output.1.log",
		"runferry/run.json":    FilesDir + "runferry/run.json",
		"media/images/a_1.png": "media/images/a_1.png",
		OutputSegmentPath(3):   FilesDir + OutputSegmentPath(3),
	} {
		if got := StoredPath(p); got != want {
			t.Errorf("StoredPath(%q) = %q, want %q", p, got, want)
		}
	}
}
