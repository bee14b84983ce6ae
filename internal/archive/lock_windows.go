//go:build windows

package archive

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockFileExclusive takes an exclusive, non-blocking lock on f's first
// byte, released by the system when the process dies.
func lockFileExclusive(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &windows.Overlapped{})
}
