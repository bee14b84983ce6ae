package main

import (
	"os"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMain runs the tests, then stops sync_change_test.go's Python process
// (stopSyncPy) and the shared servers (their watchdogs would stop them
// too), and removes the fixtures testenv made once for the binary
// (testenv.WandbArtifactRun). The runferry binary the tests share (testenv.BuildOnce) is removed
// by its own watchdog.
func TestMain(m *testing.M) {
	code := m.Run()
	stopSyncPy()
	testenv.StopShared()
	testenv.RemoveMadeFixtures()
	os.Exit(code)
}
