package sources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/fault"
)

// threePages delivers three pages to each, stopping at the first error.
func threePages(each func([]int) error) error {
	for i := range 3 {
		if err := each([]int{i}); err != nil {
			return err
		}
	}
	return nil
}

func TestReadPages(t *testing.T) {
	ctx := context.Background()
	var got [][]int
	all := func(p []int, err error) bool { got = append(got, p); return true }
	if err := ReadPages(ctx, all, threePages); err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{0}, {1}, {2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("pages %v, want %v", got, want)
	}

	got = nil
	first := func(p []int, err error) bool { got = append(got, p); return false }
	if err := ReadPages(ctx, first, threePages); err != nil || len(got) != 1 {
		t.Errorf("consumer stopping after one page: %d pages, error %v", len(got), err)
	}

	cctx, cancel := context.WithCancel(ctx)
	got = nil
	cancelling := func(p []int, err error) bool { got = append(got, p); cancel(); return true }
	if err := ReadPages(cctx, cancelling, threePages); !errors.Is(err, context.Canceled) || len(got) != 1 {
		t.Errorf("cancelled after one page: %d pages, error %v", len(got), err)
	}

	boom := errors.New("boom")
	if err := ReadPages(ctx, all, func(func([]int) error) error { return boom }); err != boom {
		t.Errorf("read's error came back as %v", err)
	}
}

func TestLocalFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LocalFolder("x", dir, "hint"); err != nil || got != dir {
		t.Errorf("LocalFolder(dir) = %q, %v", got, err)
	}
	for _, c := range []struct{ root, want string }{
		{filepath.Join(dir, "none"), "x: " + filepath.Join(dir, "none") + " does not exist"},
		{file, "x: " + file + " is not a folder (hint)"},
	} {
		_, err := LocalFolder("x", c.root, "hint")
		if err == nil || !strings.Contains(err.Error(), c.want) || fault.KindOf(err) != fault.KindFatal {
			t.Errorf("LocalFolder(%s): %v, want a fatal %q", c.root, err, c.want)
		}
	}
}
