//go:build windows

package archive

import (
	"os"

	"golang.org/x/sys/windows"
)

// takeLock takes a shared or exclusive lock on f's first byte, waiting for
// it or failing at once; the system releases it when the process dies. A
// lock already held is released first (Windows does not convert locks).
func takeLock(f *os.File, exclusive, wait bool) error {
	dropLock(f)
	var flags uint32
	if exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	if !wait {
		flags |= windows.LOCKFILE_FAIL_IMMEDIATELY
	}
	return windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, &windows.Overlapped{})
}

// dropLock releases the lock takeLock took.
func dropLock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{})
}

// sysIdentity is empty on Windows: a replaced manifest is told apart by its
// size and time.
func sysIdentity(os.FileInfo) string { return "" }
