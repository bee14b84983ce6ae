package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestPlanTableAligned: the dry run's plan table keeps its columns under
// each other when an origin is longer than 40 characters
// ("tensorboard:/.../logs#damaged/truncated" is), and says "1 file" and
// "1 point" for one. (Before: a long origin shifted its row's columns, and
// the table said "1 files".)
func TestPlanTableAligned(t *testing.T) {
	logs := filepath.Join(testenv.TensorBoardLogs(t), "logs")
	code, out, errOut := runCLI(t, "copy", "tensorboard:"+logs, "parquet:"+filepath.Join(t.TempDir(), "a"), "--dry-run")
	if code != 3 {
		t.Fatalf("dry run: exit %d, want 3 (damaged logs)\n%s%s", code, out, errOut)
	}
	_, table, ok := strings.Cut(out, "Plan (dry run, nothing written):\n")
	if !ok {
		t.Fatalf("no plan table\n%s", out)
	}
	var rows []string
	for _, l := range strings.Split(table, "\n") {
		if !strings.HasPrefix(l, "  ") {
			break
		}
		rows = append(rows, l)
	}
	if len(rows) != 7 {
		t.Fatalf("%d plan rows, want 7\n%s", len(rows), out)
	}
	col := strings.Index // no origin or name in the table holds " point" or " file"
	pointsAt, filesAt := col(rows[0], " point"), col(rows[0], " file")
	long := false
	for _, r := range rows {
		if len(strings.Fields(r)[0]) > 40 {
			long = true
		}
		if col(r, " point") != pointsAt || col(r, " file") != filesAt {
			t.Errorf("plan row out of its columns (points at %d, files at %d in the first row):\n%s\n%s", pointsAt, filesAt, rows[0], r)
		}
		if strings.Contains(r, " 1 files") || strings.Contains(r, " 1 points") {
			t.Errorf("plan row with a plural for one: %s", r)
		}
	}
	if !long {
		t.Fatalf("no origin longer than 40 characters in the table: the test proves nothing\n%s", out)
	}
	if !strings.Contains(out, " 1 file ") {
		t.Errorf("no row of one file (the tbx run)\n%s", out)
	}
}
