package sources

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runferry/runferry/internal/fault"
)

// LocalFolder checks that root, the folder a file-tree source reads, exists
// and is a folder, and returns its absolute path. Every failure is fatal and
// starts with scheme: "SCHEME: ROOT does not exist", "SCHEME: ROOT is not a
// folder (HINT)", or "SCHEME: " and the system's error.
func LocalFolder(scheme, root, hint string) (string, error) {
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fault.Fatal(fmt.Errorf("%s: %s does not exist", scheme, root))
	case err != nil:
		return "", fault.Fatal(fmt.Errorf("%s: %w", scheme, err))
	case !fi.IsDir():
		return "", fault.Fatal(fmt.Errorf("%s: %s is not a folder (%s)", scheme, root, hint))
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fault.Fatal(fmt.Errorf("%s: %w", scheme, err))
	}
	return abs, nil
}
