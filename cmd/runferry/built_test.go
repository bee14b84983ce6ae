package main

import (
	"os"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMain runs the tests, then stops sync_change_test.go's Python process
// (stopSyncPy) and the shared servers (their watchdogs would stop them
// too). The runferry binary the tests share (testenv.BuildOnce) is removed
// by its own watchdog.
func TestMain(m *testing.M) {
	code := m.Run()
	stopSyncPy()
	testenv.StopShared()
	os.Exit(code)
}
